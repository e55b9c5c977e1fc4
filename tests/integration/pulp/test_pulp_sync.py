"""osbs.flow.pulp_sync against a real Pulp 3 and a real registry (see conftest.py)."""

import json

import pytest
import requests

from osbs_local.services.registry import free_port

pytestmark = pytest.mark.pulp


def pulp_get(pulp, path, **params):
    env = pulp.env()
    response = requests.get(
        env["PULP_URL"] + path, params=params, auth=(env["PULP_USERNAME"], env["PULP_PASSWORD"]),
        verify=env["PULP_CA_BUNDLE"], timeout=30,
    )
    response.raise_for_status()
    return response.json()


def tag_digests(result):
    return {item["tag"]: item["digest"] for item in result["tags"]}


def test_first_sync_makes_version_1_then_nothing_new_is_unchanged(ansible_module, images, pulp):
    digest = images.push("osbs/first", "1.0", "first image")
    args = ansible_module.source("osbs/first", tags=["1.0"])

    first = ansible_module.run(args)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True
    assert first["repository_version"] == 1
    assert tag_digests(first) == {"1.0": digest}
    assert first["base_path"] == "stage-pulp/osbs/first"
    host = pulp.url.split("://")[1]
    assert first["pull_spec"] == f"{host}/stage-pulp/osbs/first"
    assert first["tags"][0]["pull_spec"] == f"{host}/stage-pulp/osbs/first:1.0"
    assert first["tags"][0]["pull_spec_by_digest"] == f"{host}/stage-pulp/osbs/first@{digest}"

    second = ansible_module.run(args)
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is False
    assert second["repository_version"] == 1
    assert tag_digests(second) == {"1.0": digest}


def test_a_new_image_in_the_registry_makes_a_new_version(ansible_module, images):
    images.push("osbs/rebuilt", "latest", "build 1")
    args = ansible_module.source("osbs/rebuilt", tags=["latest"])
    first = ansible_module.run(args)
    assert first["changed"] is True and first["repository_version"] == 1, first.get("msg")

    rebuilt = images.push("osbs/rebuilt", "latest", "build 2")
    second = ansible_module.run(args)
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is True
    assert second["repository_version"] == 2
    assert tag_digests(second) == {"latest": rebuilt}


def test_the_image_pulled_from_pulp_by_tag_has_the_source_digest(ansible_module, images, pulp, pull_digest, tmp_path):
    source = images.push("osbs/pullme", "2.1", "pull me from pulp")
    result = ansible_module.run(ansible_module.source("osbs/pullme", tags=["2.1"]))
    assert not result.get("failed"), result.get("msg")

    cert_dir = tmp_path / "pulp-certs"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(pulp.pki["ca_cert"].read_bytes())
    # skopeo inspect reads the manifest from the API server and the config blob through the content app.
    pulled = pull_digest(result["tags"][0]["pull_spec"], cert_dir)
    assert pulled == source == result["tags"][0]["digest"]


def test_names_come_from_pulp_sync_registry_name_and_fall_back_to_pulp_registry_name(ansible_module, images, pulp):
    images.push("osbs/named", "1", "naming")
    fallback = ansible_module.run(ansible_module.source("osbs/named", pulp_registry_name="stage-pulp"))
    explicit = ansible_module.run(
        ansible_module.source("osbs/named", pulp_registry_name="stage-pulp", pulp_sync_registry_name="prod-pulp")
    )
    assert not fallback.get("failed") and not explicit.get("failed"), (fallback.get("msg"), explicit.get("msg"))
    assert fallback["names"] == dict(
        registry_name="stage-pulp", name="stage-pulp/osbs/named", base_path="stage-pulp/osbs/named"
    )
    assert explicit["names"] == dict(
        registry_name="prod-pulp", name="prod-pulp/osbs/named", base_path="prod-pulp/osbs/named"
    )
    for names in (fallback["names"], explicit["names"]):
        for kind in ("remotes", "repositories", "distributions"):
            found = pulp_get(pulp, f"/pulp/api/v3/{kind}/container/container/", name=names["name"])
            assert found["count"] == 1, (kind, names["name"])
        distribution = pulp_get(pulp, "/pulp/api/v3/distributions/container/container/", name=names["name"])
        assert distribution["results"][0]["base_path"] == names["base_path"]


def test_check_mode_sends_no_write_request_to_pulp(ansible_module, images, pulp, access_log):
    images.push("osbs/checked", "1", "check mode")
    start = len(access_log.lines())
    new = ansible_module.run(ansible_module.source("osbs/checked", tags=["1"]), check=True, diff=True)
    assert not new.get("failed"), new.get("msg")
    assert new["changed"] is True
    assert new["diff"]["before"]["remote"] is None
    assert new["diff"]["after"]["remote"]["includes"] == ["1"]
    seen = access_log.requests_since(start)
    assert any('"GET /pulp/api/v3/remotes/container/container/' in line for line in seen), seen
    assert access_log.writes(seen) == []
    assert pulp_get(pulp, "/pulp/api/v3/remotes/container/container/", name="stage-pulp/osbs/checked")["count"] == 0

    synced = ansible_module.run(ansible_module.source("osbs/checked", tags=["1"]))
    assert synced["changed"] is True and synced["repository_version"] == 1, synced.get("msg")
    start = len(access_log.lines())
    retag = ansible_module.run(ansible_module.source("osbs/checked", tags=["1", "2"]), check=True, diff=True)
    assert not retag.get("failed"), retag.get("msg")
    assert retag["changed"] is True
    assert retag["diff"]["before"]["remote"]["includes"] == ["1"]
    assert retag["diff"]["after"]["remote"]["includes"] == ["1", "2"]
    assert access_log.writes(access_log.requests_since(start)) == []
    remote = pulp_get(pulp, "/pulp/api/v3/remotes/container/container/", name="stage-pulp/osbs/checked")["results"][0]
    assert remote["includes"] == ["1"]

    unchanged = ansible_module.run(ansible_module.source("osbs/checked", tags=["1"]), check=True)
    assert unchanged["changed"] is False and unchanged["repository_version"] == 1


def test_registry_credentials_change_the_remote_only_when_they_differ(ansible_module, images, registry, pulp):
    images.push("osbs/creds", "1", "credentials")
    from_dockercfg = ansible_module.source("osbs/creds")
    first = ansible_module.run(from_dockercfg)
    assert first["changed"] is True, first.get("msg")

    from_options = ansible_module.source("osbs/creds", registry_username=registry.username, registry_password=registry.password)
    del from_options["registry_dockercfg_path"]
    same = ansible_module.run(from_options, diff=True)
    assert not same.get("failed"), same.get("msg")
    assert same["changed"] is False
    assert same["diff"]["after"]["remote"]["credentials"] == "set"

    wrong = ansible_module.run(dict(from_options, registry_password="not-the-password"))
    assert wrong["failed"] is True
    assert wrong["changed"] is True  # the remote got the new password before the sync failed
    assert "Pulp could not sync https://%s/osbs/creds" % registry.host in wrong["msg"]
    assert "/pulp/api/v3/tasks/" in wrong["msg"]

    fixed = ansible_module.run(from_dockercfg, diff=True)
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["changed"] is True  # the remote got the right password back
    assert fixed["diff"]["after"]["remote"]["credentials"] == "set (changed)"
    assert fixed["repository_version"] == 1  # nothing new upstream
    again = ansible_module.run(from_dockercfg)
    assert again["changed"] is False


def test_registry_uri_may_have_a_scheme_and_v2_but_not_v1(ansible_module, images, registry):
    images.push("osbs/uri", "1", "uri forms")
    plain = ansible_module.run(ansible_module.source("osbs/uri"))
    assert plain["changed"] is True, plain.get("msg")
    with_v2 = ansible_module.run(ansible_module.source("osbs/uri", registry_uri=f"https://{registry.host}/v2"))
    assert not with_v2.get("failed"), with_v2.get("msg")
    assert with_v2["changed"] is False
    v1 = ansible_module.run(ansible_module.source("osbs/uri", registry_uri=f"{registry.host}/v1"))
    assert v1["failed"] is True
    assert "v1 registry API" in v1["msg"]


def test_wrong_pulp_password_fails_with_a_clear_message(ansible_module):
    result = ansible_module.run(ansible_module.source("osbs/first"), env={"PULP_PASSWORD": "wrong"})
    assert result["failed"] is True
    assert "rejected the credentials of user 'admin'" in result["msg"]
    assert "401" in result["msg"]


def test_pulp_down_fails_with_a_clear_message(ansible_module):
    closed_port = free_port()  # nothing listens there: a Pulp that is not running
    result = ansible_module.run(ansible_module.source("osbs/first"), env={"PULP_URL": f"https://127.0.0.1:{closed_port}"})
    assert result["failed"] is True
    assert result["msg"].startswith(f"Cannot reach Pulp at https://127.0.0.1:{closed_port}: connection refused")


def test_a_registry_pulp_cannot_reach_fails_with_pulps_reason_and_the_task(ansible_module):
    closed_port = free_port()
    args = ansible_module.source("osbs/unreachable", registry_uri=f"127.0.0.1:{closed_port}")
    del args["registry_dockercfg_path"]  # it has no entry for that host
    result = ansible_module.run(args)
    assert result["failed"] is True
    assert f"Pulp could not sync https://127.0.0.1:{closed_port}/osbs/unreachable" in result["msg"]
    assert "Cannot connect to host" in result["msg"] or "Connection refused" in result["msg"], result["msg"]
    assert "(task /pulp/api/v3/tasks/" in result["msg"]


def test_an_unknown_repository_fails_with_pulps_reason_and_the_task(ansible_module):
    result = ansible_module.run(ansible_module.source("osbs/does-not-exist", tags=["1"]))
    assert result["failed"] is True
    assert "Pulp could not sync https://" in result["msg"] and "/osbs/does-not-exist" in result["msg"]
    assert "(task /pulp/api/v3/tasks/" in result["msg"]


def test_module_defaults_for_the_pulp_action_group_set_the_connection(ansible_module, images, pulp, tmp_path):
    digest = images.push("osbs/defaults", "1", "module defaults")
    env = pulp.env()
    connection = dict(
        pulp_url=env["PULP_URL"], username=env["PULP_USERNAME"], password=env["PULP_PASSWORD"],
        ca_cert=env["PULP_CA_BUNDLE"],
    )
    playbook = tmp_path / "sync.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/osbs.flow.pulp": connection},
        "tasks": [{"name": "sync", "osbs.flow.pulp_sync": ansible_module.source("osbs/defaults", tags=["1"])}],
    }]))
    (result,) = ansible_module.run_playbook(playbook, without_env=list(env))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert tag_digests(result) == {"1": digest}
