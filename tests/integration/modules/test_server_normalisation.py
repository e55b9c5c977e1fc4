"""osbs_buildconfig and osbs_build against what OpenShift stores, refuses and names (issue 14 items 6, 7 and A5).

docs/openshift-fidelity.md A1, A5, B6 and C5 name the OpenShift source of each behaviour.
"""

from __future__ import annotations

import json

import pytest

from testlib import make_git_repo, run_module

from test_buildconfig_and_build import bc_args, dockerfile, get_bc, kubectl


def test_dockerfile_path_and_context_dir_as_given_by_people_are_no_change_the_second_time(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "paths", {"sub/Dockerfile": dockerfile(busybox_base, "osbs/paths")})
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/paths", dockerfile_path="./Dockerfile", context_dir="sub/")
    first = run_module(osbs_engine, "osbs_buildconfig", args)
    assert first.get("failed") is not True, first.get("msg")
    assert first["changed"] is True
    stored = get_bc(osbs_engine, first["name"])["spec"]
    assert stored["strategy"]["dockerStrategy"]["dockerfilePath"] == "Dockerfile"
    assert stored["source"]["contextDir"] == "sub"
    writes = osbs_engine.writes()
    again = run_module(osbs_engine, "osbs_buildconfig", args, diff=True)
    assert again["changed"] is False, again.get("diff")
    assert osbs_engine.writes() == writes

    outside = run_module(osbs_engine, "osbs_buildconfig", dict(args, dockerfile_path="../Dockerfile"))
    assert outside["failed"] is True
    assert "dockerfile_path '../Dockerfile' leaves the repository" in outside["msg"]
    assert osbs_engine.writes() == writes


def test_an_oc_new_build_buildconfig_with_a_default_trigger_is_adopted_with_one_trigger(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "newbuild", {"Dockerfile": dockerfile(busybox_base, "osbs/newbuild")})
    # Paused, so neither the cluster nor the engine starts a build while the test adopts it.
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/newbuild", autorebuild_enabled=False)
    made_by_oc = {
        "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig",
        "metadata": {"name": "newbuild", "labels": {"build": "newbuild", "git-repo-name": "newbuild", "git-branch": "main"}},
        "spec": {
            "source": {"git": {"uri": uri, "ref": "main"}},
            "strategy": {"dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "osbs-busybox:latest"}}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "newbuild:latest"}},
            "triggers": [{"type": "GitHub", "github": {"secret": "hook"}}, {"type": "ImageChange", "imageChange": {"paused": True}}],
        },
    }
    kubectl(osbs_engine, "create", "--validate=false", "-f", "-", stdin=json.dumps(made_by_oc))
    assert get_bc(osbs_engine, "newbuild")["spec"]["triggers"][1] == {"type": "ImageChange", "imageChange": {"paused": True}}
    adopted = run_module(osbs_engine, "osbs_buildconfig", args)
    assert adopted.get("failed") is not True, adopted.get("msg")
    assert adopted["name"] == "newbuild"
    triggers = get_bc(osbs_engine, "newbuild")["spec"]["triggers"]
    assert triggers == [{"type": "GitHub", "github": {"secret": "hook"}}, {"type": "ImageChange", "imageChange": {"paused": True}}]
    assert run_module(osbs_engine, "osbs_buildconfig", args)["changed"] is False


@pytest.mark.slow
def test_a_buildconfig_name_longer_than_a_label_value_builds_and_its_build_is_reused(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "longname", {"Dockerfile": dockerfile(busybox_base, "osbs/longname")})
    name = "adopted-buildconfig-with-a-name-longer-than-any-label-value-may-be-0123456789"
    assert len(name) > 70
    # Another BuildConfig whose name shares the first 63 characters: its builds carry the same label value.
    twin = name[:63] + "-twin"
    for bc_name in (name, twin):
        kubectl(osbs_engine, "create", "--validate=false", "-f", "-", stdin=json.dumps({
            "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig",
            "metadata": {"name": bc_name, "labels": {"git-repo-name": "longname" if bc_name == name else "other", "git-branch": "main"}},
            "spec": {"source": {"git": {"uri": uri if bc_name == name else "file:///nonexistent/repo.git", "ref": "main"}},
                     "strategy": {"dockerStrategy": {}},
                     "output": {"to": {"kind": "DockerImage", "name": "%s/osbs/longname:old" % osbs_engine.registry}}},
        }))
    twin_build = osbs_engine.session().post(
        "%s/apis/build.openshift.io/v1/namespaces/%s/buildconfigs/%s/instantiate" % (osbs_engine.base, osbs_engine.namespace, twin),
        json={"kind": "BuildRequest", "apiVersion": "build.openshift.io/v1", "metadata": {"name": twin}})
    assert twin_build.status_code == 201, twin_build.text
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/longname")
    adopted = run_module(osbs_engine, "osbs_buildconfig", args)
    assert adopted.get("failed") is not True, adopted.get("msg")
    assert adopted["name"] == name

    build = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert build.get("failed") is not True, build.get("msg")
    assert build["action"] == "started" and build["phase"] == "Complete"
    labels = json.loads(kubectl(osbs_engine, "get", "build", build["name"], "-o", "json"))["metadata"]["labels"]
    assert labels["openshift.io/build-config.name"] == name[:63]

    writes = osbs_engine.writes()
    again = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and again["action"] == "existing"
    assert again["name"] == build["name"]
    assert osbs_engine.writes() == writes
