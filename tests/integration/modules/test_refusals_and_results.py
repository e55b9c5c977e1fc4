"""Issue 13 items 2, 9 and 10 on the module side, against osbs-local.

- An image name that cannot be a repository (the Dockerfile's `name` label, the `image` and `image_tag`
  options) is refused before any object is written.
- `wait_timeout: 0` does not wait and reports the started build as a change; a negative timeout is refused
  by every module that has one.
- A base image pinned by digest gets no ImageChange trigger and a warning that says so.
- A credential in a git URI appears nowhere in a module's result (its echoed arguments included).
"""

from __future__ import annotations

import json

import pytest

from testlib import make_git_repo, run_module

PASSWORD = "s3cret-Pa55word"


def bc_args(engine, base, uri, commit, image, **extra):
    args = dict(namespace=engine.namespace, git_uri=uri, git_branch="main", git_commit=commit, base_image=base,
                image=image, registry_uri=engine.registry, registry_secret=engine.registry_secret)
    args.update(extra)
    return args


def names(engine, kind):
    out = engine.kubectl("get", kind, "-o", "json", namespace=engine.namespace).stdout
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}


@pytest.mark.parametrize("label, problem", [
    ("Bad/NAME", "upper-case"),
    ("a" * 256, "more than 255"),
    ("ns//app", "empty path component"),
    ("ns/-app", "path component '-app'"),
])
def test_a_name_label_that_cannot_be_a_repository_is_refused_before_any_write(osbs_engine, busybox_base, tmp_path, label, problem):
    uri, commit = make_git_repo(tmp_path / "badname", {"Dockerfile": "FROM %s\nLABEL name=%s\nRUN true\n" % (busybox_base, label)})
    # A base image no other test imports, so an ImageStream created for it would show.
    base = busybox_base.rsplit(":", 1)[0] + ":badname-base"
    writes, buildconfigs, streams = osbs_engine.writes(), names(osbs_engine, "bc"), names(osbs_engine, "is")

    source = run_module(osbs_engine, "osbs_source_info", dict(git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache")))
    assert source.get("failed") is True, source
    assert "'name' label" in source["msg"] and label in source["msg"] and problem in source["msg"], source["msg"]
    assert "LABEL name=" in source["msg"], source["msg"]

    # The same value given to osbs_buildconfig (as a flow that skipped the source step would) is refused there too.
    result = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, base, uri, commit, label))
    assert result.get("failed") is True, result
    assert "image %r cannot be the name of an image repository" % label in result["msg"] and problem in result["msg"], result["msg"]
    assert osbs_engine.writes() == writes
    assert names(osbs_engine, "bc") == buildconfigs and names(osbs_engine, "is") == streams


@pytest.mark.parametrize("extra, message", [
    (dict(image="osbs/fine", image_tag=".hidden"), "image_tag '.hidden' is not a valid image tag"),
    (dict(image="osbs/fine", image_tag="t" * 129), "is not a valid image tag"),
    (dict(image="osbs/" + "x" * 250), "more than 255"),
])
def test_an_image_or_tag_the_registry_would_refuse_is_refused_before_any_write(osbs_engine, busybox_base, tmp_path, extra, message):
    uri, commit = make_git_repo(tmp_path / "badtag", {"Dockerfile": "FROM %s\nLABEL name=osbs/fine\nRUN true\n" % busybox_base})
    writes = osbs_engine.writes()
    args = bc_args(osbs_engine, busybox_base.rsplit(":", 1)[0] + ":badtag-base", uri, commit, extra.pop("image"), **extra)
    result = run_module(osbs_engine, "osbs_buildconfig", args)
    assert result.get("failed") is True, result
    assert message in result["msg"], result["msg"]
    assert osbs_engine.writes() == writes


@pytest.mark.parametrize("module, args, option", [
    ("osbs_build", dict(buildconfig="any", wait_timeout=-1), "wait_timeout"),
    ("osbs_buildconfig", dict(git_uri="https://git.example.com/a.git", git_branch="main", image="a",
                              registry_uri="r.example.com", wait_timeout=-5), "wait_timeout"),
    ("osbs_autorebuild", dict(imagestreamtag="a:latest", wait_timeout=-1), "wait_timeout"),
    ("osbs_autorebuild", dict(imagestreamtag="a:latest", wait_timeout=0), "wait_timeout"),
    ("pulp_sync", dict(pulp_url="https://127.0.0.1:1", username="admin", password="pulp-password", repository="a",
                       pulp_registry_name="pulp.example.com", registry_uri="r.example.com", timeout=-1), "timeout"),
])
def test_a_negative_timeout_is_refused(osbs_engine, module, args, option):
    if module != "pulp_sync":
        args = dict(args, namespace=osbs_engine.namespace)
    writes = osbs_engine.writes()
    result = run_module(osbs_engine, module, args)
    assert result.get("failed") is True, result
    assert result["msg"].startswith("%s is %d: give a number of seconds of " % (option, args[option])), result["msg"]
    assert osbs_engine.writes() == writes


@pytest.mark.slow
def test_wait_timeout_0_starts_the_build_reports_the_change_and_does_not_wait(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "nowait", {"Dockerfile": "FROM %s\nLABEL name=osbs/nowait\nRUN sleep 5\n" % busybox_base})
    bc = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, "osbs/nowait"))
    assert not bc.get("failed"), bc.get("msg")
    result = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"],
                                                        git_commit=commit, wait_timeout=0))
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and result["action"] == "started"
    assert result["phase"] in ("New", "Pending", "Running"), result["phase"]
    # Let it end, so it does not run on into other tests.
    ended = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"],
                                                       git_commit=commit, when_running="wait", wait_timeout=600))
    assert ended.get("failed") is not True and ended["phase"] == "Complete" and ended["changed"] is False, ended.get("msg")


@pytest.mark.slow
def test_a_base_image_pinned_by_digest_gets_no_trigger_and_a_warning(osbs_engine, busybox_base_image, tmp_path):
    image, digest = busybox_base_image
    pinned = "%s@%s" % (image.rsplit(":", 1)[0], digest)
    uri, commit = make_git_repo(tmp_path / "pinned", {"Dockerfile": "FROM %s\nLABEL name=osbs/pinned\nRUN true\n" % pinned})
    source = run_module(osbs_engine, "osbs_source_info", dict(git_uri=uri, git_branch="main", cache_dir=str(tmp_path / "cache")))
    assert source.get("failed") is not True and source["base_image"] == pinned, source
    bc = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, source["base_image"], uri, commit, "osbs/pinned"))
    assert bc.get("failed") is not True, bc.get("msg")
    assert bc["buildconfig"]["spec"]["triggers"] == [] and bc["trigger"] is None
    # ansible-core 2.19 returns each warning as a structure holding its text.
    warnings = json.dumps(bc.get("warnings", []))
    assert "pinned by digest" in warnings and "not be rebuilt" in warnings, bc.get("warnings")
    build = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"],
                                                       git_commit=commit, wait_timeout=600))
    assert build.get("failed") is not True and build["phase"] == "Complete", build.get("msg")


def test_a_password_in_a_git_uri_is_in_no_module_result(osbs_engine, busybox_base, tmp_path):
    uri = "https://builder:%s@git.example.com/containers/app.git" % PASSWORD
    result = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, "a" * 40, "osbs/app"))
    assert result.get("failed") is True
    assert "https://***@git.example.com/containers/app.git carries credentials" in result["msg"], result["msg"]
    assert PASSWORD not in json.dumps(result), json.dumps(result)[:2000]
