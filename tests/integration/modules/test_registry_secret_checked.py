"""A push secret that does not exist (docs/openshift-fidelity.md C3), on the module side, against osbs-local.

OpenShift keeps such a build Pending with reason MissingPushSecret until the secret exists (OCM
build_controller.go handleActiveBuild), so a misspelt `registry_secret` would make osbs_build wait for its
whole wait_timeout. osbs_buildconfig refuses a missing push secret before writing anything, and a build that
cannot start is reported with the reason OpenShift gave it.
"""

from __future__ import annotations

import json

import pytest

from testlib import make_git_repo, run_module


def bc_args(engine, base, uri, commit, **extra):
    args = dict(namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base,
                image="osbs/push-secret", registry_uri=engine.registry, registry_secret=engine.registry_secret)
    args.update(extra)
    return args


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_missing_registry_secret_is_refused_before_any_write(osbs_engine, busybox_base_image, tmp_path, check_mode):
    image, digest = busybox_base_image
    base = "%s@%s" % (image.rsplit(":", 1)[0], digest)  # by digest: nothing to import, so the BuildConfig is the only write
    uri, commit = make_git_repo(tmp_path / "typo", {"Dockerfile": "FROM %s\nLABEL name=osbs/typo\nRUN true\n" % base})
    writes = osbs_engine.writes()
    result = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, base, uri, commit, registry_secret="regsitry-dockercfg"),
                        check_mode=check_mode)
    assert result.get("failed") is True, result
    message = result["msg"]
    assert "'regsitry-dockercfg'" in message and osbs_engine.namespace in message, message
    assert "oc create secret docker-registry" in message and "oc secrets link builder" in message, message
    assert osbs_engine.writes() == writes


@pytest.mark.parametrize("cancel_on_timeout", [False, True])
def test_a_build_pending_for_its_push_secret_is_reported_with_its_reason(osbs_engine, busybox_base, tmp_path, cancel_on_timeout):
    name = "push-secret-gone-%s" % str(cancel_on_timeout).lower()
    secret = name + "-dockercfg"
    source = json.loads(osbs_engine.kubectl("get", "secret", osbs_engine.registry_secret, "-o", "json",
                                            namespace=osbs_engine.namespace).stdout)
    manifest = tmp_path / "secret.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
                                    "type": source["type"], "data": source["data"]}))
    osbs_engine.kubectl("create", "--validate=false", "-f", str(manifest), namespace=osbs_engine.namespace)
    uri, commit = make_git_repo(tmp_path / name, {"Dockerfile": "FROM %s\nLABEL name=osbs/%s\nRUN true\n" % (busybox_base, name)})
    ensured = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, name=name,
                                                                   image="osbs/" + name, registry_secret=secret))
    assert ensured.get("failed") is not True, ensured
    # The secret goes after the BuildConfig was ensured (deleted, or never created on another cluster).
    osbs_engine.kubectl("delete", "secret", secret, namespace=osbs_engine.namespace)

    result = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, wait_timeout=5,
                                                         cancel_on_timeout=cancel_on_timeout))
    assert result.get("failed") is True, result
    assert "Pending (MissingPushSecret: Missing push secret.)" in result["msg"], result["msg"]
    assert "'%s'" % secret in result["msg"] and "oc create secret docker-registry" in result["msg"], result["msg"]


def test_a_build_pending_for_its_source_secret_names_the_missing_secret(osbs_engine, busybox_base, tmp_path):
    """A missing source secret keeps the build Pending with no reason at all (the kubelet cannot mount it; OCM
    strategy/util.go setupSourceSecrets): the module looks the Build's secrets up to say which one is missing."""
    name = "source-secret-gone"
    secret = name + "-auth"
    manifest = tmp_path / "secret.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
                                    "type": "kubernetes.io/basic-auth",
                                    "data": {"username": "cmVhZGVy", "password": "bm90LXVzZWQ="}}))
    osbs_engine.kubectl("create", "--validate=false", "-f", str(manifest), namespace=osbs_engine.namespace)
    uri, commit = make_git_repo(tmp_path / name, {"Dockerfile": "FROM %s\nLABEL name=osbs/%s\nRUN true\n" % (busybox_base, name)})
    ensured = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, name=name,
                                                                   image="osbs/" + name, git_source_secret=secret))
    assert ensured.get("failed") is not True, ensured
    osbs_engine.kubectl("delete", "secret", secret, namespace=osbs_engine.namespace)

    result = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, wait_timeout=5,
                                                         cancel_on_timeout=True))
    assert result.get("failed") is True, result
    assert "was still Pending; its pod cannot start: secret %r (spec.source.sourceSecret) does not exist" % secret \
        in result["msg"], result["msg"]
