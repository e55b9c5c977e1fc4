"""The pure decisions of module_utils/pulp_sync.py and pulp.py (the calls to Pulp are covered in tests/integration/pulp)."""

import base64
import json

import pytest
import requests
from pulp_glue.common.exceptions import PulpAuthenticationFailed, PulpHTTPError

from ansible_collections.osbs.flow.plugins.module_utils import pulp, pulp_sync
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError


# ---- naming --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "registry_name, sync_registry_name, expected_prefix",
    [("stage-pulp", None, "stage-pulp"), ("stage-pulp", "prod-pulp", "prod-pulp"), (None, "prod-pulp", "prod-pulp")],
)
def test_pulp_names_use_the_sync_registry_name_and_fall_back_to_the_registry_name(
    registry_name, sync_registry_name, expected_prefix
):
    names = pulp_sync.pulp_names(registry_name, sync_registry_name, "osbs/app")
    assert names == dict(
        registry_name=expected_prefix, name=expected_prefix + "/osbs/app", base_path=expected_prefix + "/osbs/app"
    )


@pytest.mark.parametrize("registry_name, repository", [("Stage", "osbs/app"), ("stage", "osbs/App"), ("stage", "a//b")])
def test_pulp_names_reject_what_is_not_a_container_repository_path(registry_name, repository):
    with pytest.raises(OsbsFlowError, match="not a valid container repository path"):
        pulp_sync.pulp_names(registry_name, None, repository)


def test_pulp_names_need_a_registry_name():
    with pytest.raises(OsbsFlowError, match="pulp_registry_name"):
        pulp_sync.pulp_names(None, None, "osbs/app")


# ---- dockercfg -----------------------------------------------------------------------------
def _b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "content",
    [
        {"auths": {"reg.example.com:5000": {"auth": _b64("user:pa:ss")}}},  # config.json / auth.json
        {"https://reg.example.com:5000/v1/": {"auth": _b64("user:pa:ss"), "email": "x@y"}},  # .dockercfg
        {"reg.example.com:5000": {"username": "user", "password": "pa:ss"}},
    ],
)
def test_read_dockercfg_finds_the_registry_entry(tmp_path, content):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(content))
    assert pulp_sync.read_dockercfg(str(path), "reg.example.com:5000") == ("user", "pa:ss")


def test_read_dockercfg_names_the_missing_host_and_what_the_file_has(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"auths": {"other:5000": {"auth": _b64("a:b")}}}))
    with pytest.raises(OsbsFlowError, match=r"no entry for reg:5000 \(it has: other:5000\)"):
        pulp_sync.read_dockercfg(str(path), "reg:5000")


def test_read_dockercfg_reports_an_unreadable_file(tmp_path):
    with pytest.raises(OsbsFlowError, match="cannot read the registry dockercfg"):
        pulp_sync.read_dockercfg(str(tmp_path / "absent.json"), "reg:5000")


# ---- credentials fingerprint and the remote ------------------------------------------------
def test_fingerprint_is_salted_and_verifiable():
    one = pulp_sync.credentials_fingerprint("user", "secret")
    two = pulp_sync.credentials_fingerprint("user", "secret")
    assert one != two  # a new salt each time: equal passwords do not give equal labels
    assert "secret" not in one
    assert pulp_sync.fingerprint_matches(one, "user", "secret") and pulp_sync.fingerprint_matches(two, "user", "secret")
    assert not pulp_sync.fingerprint_matches(one, "user", "other")
    assert not pulp_sync.fingerprint_matches(one, "other", "secret")
    assert not pulp_sync.fingerprint_matches(None, "user", "secret")
    assert not pulp_sync.fingerprint_matches("garbage", "user", "secret")


NAMES = pulp_sync.pulp_names("stage", None, "osbs/app")
DESIRED = pulp_sync.desired_remote(NAMES, "https://reg:5000", "osbs/app", ["b", "a"], tls_validation=True, ca_cert_pem="PEM\n")


def _remote_as_pulp_returns_it(username=None, password=None):
    body = pulp_sync.remote_create_body(DESIRED, username, password)
    remote = {key: value for key, value in body.items() if key not in ("username", "password")}
    remote["pulp_labels"] = body.get("pulp_labels", {})
    remote["hidden_fields"] = [
        {"name": "username", "is_set": username is not None},
        {"name": "password", "is_set": password is not None},
    ]
    return remote


def test_desired_remote_sorts_the_tags_into_includes():
    assert DESIRED["includes"] == ["a", "b"]
    assert pulp_sync.desired_remote(NAMES, "u", "r", None, True, None)["includes"] is None


def test_an_equal_remote_needs_no_update_even_with_credentials():
    assert pulp_sync.remote_update(_remote_as_pulp_returns_it("user", "pw"), DESIRED, "user", "pw") == {}
    assert pulp_sync.remote_update(_remote_as_pulp_returns_it(), DESIRED, None, None) == {}


def test_remote_update_holds_only_what_differs():
    current = dict(_remote_as_pulp_returns_it(), url="https://old:5000", includes=["a"], ca_cert="PEM")
    assert pulp_sync.remote_update(current, DESIRED, None, None) == {"url": "https://reg:5000", "includes": ["a", "b"]}


def test_changed_credentials_update_password_and_fingerprint():
    fingerprint = pulp_sync.credentials_fingerprint("user", "old")
    current = dict(_remote_as_pulp_returns_it("user", "old"), pulp_labels={"team": "x", pulp_sync.CREDENTIALS_LABEL: fingerprint})
    update = pulp_sync.remote_update(current, DESIRED, "user", "new")
    assert update["username"] == "user" and update["password"] == "new"
    assert update["pulp_labels"]["team"] == "x"  # other labels are kept
    assert pulp_sync.fingerprint_matches(update["pulp_labels"][pulp_sync.CREDENTIALS_LABEL], "user", "new")


def test_dropped_credentials_are_cleared():
    update = pulp_sync.remote_update(_remote_as_pulp_returns_it("user", "pw"), DESIRED, None, None)
    assert update == {"username": None, "password": None, "pulp_labels": {}}


def test_credentials_set_outside_the_module_are_replaced_once():
    current = _remote_as_pulp_returns_it()
    current["hidden_fields"] = [{"name": "username", "is_set": True}, {"name": "password", "is_set": True}]
    update = pulp_sync.remote_update(current, DESIRED, "user", "pw")
    assert set(update) == {"username", "password", "pulp_labels"}


def test_describe_remote_never_shows_the_password():
    shown = pulp_sync.describe_remote(pulp_sync.remote_create_body(DESIRED, "user", "pw"), "set")
    assert "pw" not in json.dumps(shown) and shown["credentials"] == "set"


# ---- distribution, versions, tags ----------------------------------------------------------
def test_distribution_update():
    current = {"base_path": "stage/osbs/app", "repository": "/repo/1/", "repository_version": None}
    assert pulp_sync.distribution_update(current, "stage/osbs/app", "/repo/1/") == {}
    assert pulp_sync.distribution_update(current, "prod/osbs/app", "/repo/2/") == {
        "base_path": "prod/osbs/app",
        "repository": "/repo/2/",
    }
    pinned = dict(current, repository=None, repository_version="/repo/1/versions/3/")
    assert pulp_sync.distribution_update(pinned, "stage/osbs/app", "/repo/1/") == {
        "repository": "/repo/1/",
        "repository_version": None,
    }


@pytest.mark.parametrize(
    "href, number",
    [("/pulp/api/v3/repositories/container/container/0190/versions/12/", 12), (None, None), ("/x/", None)],
)
def test_version_number(href, number):
    assert pulp_sync.version_number(href) == number


def test_synced_and_missing_tags_understand_patterns():
    available = {"1.0": "sha256:a", "1.1": "sha256:b", "latest": "sha256:c"}
    assert pulp_sync.synced_tags(None, available) == ["1.0", "1.1", "latest"]
    assert pulp_sync.synced_tags(["1.*"], available) == ["1.0", "1.1"]
    assert pulp_sync.missing_tags(["1.*", "2.0", "latest"], available) == ["2.0"]


def test_pull_host():
    assert pulp_sync.pull_host("https://pulp.example.com:8443/") == "pulp.example.com:8443"


# ---- errors --------------------------------------------------------------------------------
def test_describe_pulp_error():
    url = "https://pulp:443"
    assert "rejected the credentials of user 'admin'" in pulp.describe_pulp_error(
        PulpAuthenticationFailed("status_read"), url, "admin"
    )
    refused = pulp.PulpException(
        "HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /pulp/api/v3/docs/api.json "
        "(Caused by NewConnectionError('...: Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    assert pulp.describe_pulp_error(refused, url, "admin") == "Cannot reach Pulp at https://pulp:443: connection refused (is Pulp running?)"
    assert "HTTP 400" in pulp.describe_pulp_error(PulpHTTPError('{"name":["This field must be unique."]}', 400), url, "a")
    response = requests.Response()
    response.status_code = 401
    assert "rejected the credentials" in pulp.describe_pulp_error(requests.HTTPError(response=response), url, "a")
