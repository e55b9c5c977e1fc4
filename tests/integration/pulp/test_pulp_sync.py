"""osbs.flow.pulp_sync against a real Pulp 3 and a real registry (see conftest.py)."""

import requests


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
