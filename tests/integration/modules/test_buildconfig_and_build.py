"""osbs_buildconfig and osbs_build against osbs-local, with real git repositories and real buildah builds."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from testlib import COLLECTIONS, VENV_BIN, make_git_repo, commit_files, run_module


def dockerfile(base, name, run="echo built > /built"):
    return "FROM %s\nLABEL name=%s\nRUN %s\n" % (base, name, run)


@pytest.fixture
def app_repo(tmp_path, busybox_base):
    uri, commit = make_git_repo(tmp_path / "app", {"Dockerfile": dockerfile(busybox_base, "osbs/app")})
    return tmp_path / "app", uri, commit


def bc_args(engine, base, uri, commit, **extra):
    args = dict(
        namespace=engine.namespace,
        git_uri=uri,
        git_branch="main",
        git_commit=commit,
        base_image=base,
        image="osbs/%s" % uri.rstrip("/").rsplit("/", 1)[-1],
        registry_uri=engine.registry,
        registry_secret=engine.registry_secret,
    )
    args.update(extra)
    return args


def kubectl(engine, *args, stdin=None):
    return subprocess.run(
        ["kubectl", "--kubeconfig", engine.kubeconfig, "-n", engine.namespace, *args],
        input=stdin, capture_output=True, text=True, check=True,
    ).stdout


def get_bc(engine, name):
    return json.loads(kubectl(engine, "get", "bc", name, "-o", "json"))


def list_builds(engine, bc_name):
    return json.loads(kubectl(engine, "get", "builds", "-l", "openshift.io/build-config.name=%s" % bc_name, "-o", "json"))["items"]


@pytest.mark.slow
def test_ensure_is_idempotent_and_check_mode_writes_nothing(osbs_engine, busybox_base, app_repo):
    _, uri, commit = app_repo
    args = bc_args(osbs_engine, busybox_base, uri, commit)

    writes = osbs_engine.writes()
    checked = run_module(osbs_engine, "osbs_buildconfig", args, check_mode=True, diff=True)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True
    assert osbs_engine.writes() == writes, "check mode sent a write request"

    first = run_module(osbs_engine, "osbs_buildconfig", args)
    assert first["changed"] is True, first
    bc = first["buildconfig"]
    assert bc["metadata"]["labels"]["is_autorebuild"] == "false"
    assert bc["metadata"]["labels"]["git-repo-name"] == "app"
    assert bc["metadata"]["labels"]["git-branch"] == "main"
    # The one commit rule: the ref is the commit of the next user build; the branch is in the labels.
    assert bc["spec"]["source"]["git"] == {"uri": uri, "ref": commit}
    [trigger] = bc["spec"]["triggers"]
    assert trigger["type"] == "ImageChange"
    assert trigger["imageChange"]["from"] == {"kind": "ImageStreamTag", "name": "osbs-busybox:latest"}
    # The trigger already saw the current base image: the user build, not the trigger, builds it.
    assert trigger["imageChange"]["lastTriggeredImageID"].startswith("%s/osbs/busybox@sha256:" % osbs_engine.registry)
    assert bc["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "ImageStreamTag", "name": "osbs-busybox:latest"}
    assert bc["spec"]["output"]["pushSecret"] == {"name": osbs_engine.registry_secret}
    assert '"git_ref": "%s"' % commit in bc["metadata"]["annotations"]["osbs.flow/bump-release"]
    assert bc["metadata"]["annotations"]["osbs.flow/stop-autorebuild-if-disabled"] == '{"config_file": ".osbs-repo-config"}'

    writes = osbs_engine.writes()
    second = run_module(osbs_engine, "osbs_buildconfig", args)
    assert second["changed"] is False, second.get("diff")
    assert osbs_engine.writes() == writes, "an unchanged ensure sent a write request"
    time.sleep(2)  # give the engine's trigger controller a chance to (wrongly) fire
    assert list_builds(osbs_engine, first["name"]) == []


@pytest.mark.slow
def test_diff_shows_the_changed_git_branch_and_keeps_what_is_not_ours(osbs_engine, busybox_base, app_repo):
    _, uri, commit = app_repo
    args = bc_args(osbs_engine, busybox_base, uri, commit, name="app-diff")
    assert run_module(osbs_engine, "osbs_buildconfig", args)["changed"] is True

    # Someone adds their own label, annotation and a generic webhook trigger.
    kubectl(osbs_engine, "patch", "bc", "app-diff", "--type=merge", "-p",
            '{"metadata":{"labels":{"team":"blue"},"annotations":{"note":"keep me"}}}')
    kubectl(osbs_engine, "patch", "bc", "app-diff", "--type=json", "-p",
            '[{"op":"add","path":"/spec/triggers/-","value":{"type":"Generic","generic":{"secretReference":{"name":"hook"}}}}]')
    changed = run_module(osbs_engine, "osbs_buildconfig", dict(args, git_branch="release"), diff=True)
    assert changed["changed"] is True
    assert changed["diff"]["before"]["metadata"]["labels"]["git-branch"] == "main"
    assert changed["diff"]["after"]["metadata"]["labels"]["git-branch"] == "release"
    assert '"git_branch": "release"' in changed["diff"]["after"]["metadata"]["annotations"]["osbs.flow/bump-release"]
    bc = get_bc(osbs_engine, "app-diff")
    assert bc["metadata"]["labels"]["team"] == "blue"
    assert bc["metadata"]["annotations"]["note"] == "keep me"
    assert {"type": "Generic", "generic": {"secretReference": {"name": "hook"}}} in bc["spec"]["triggers"]
    assert len([t for t in bc["spec"]["triggers"] if t["type"] == "ImageChange"]) == 1


def test_buildconfig_made_by_osbs_client_is_adopted_not_duplicated(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "legacy", {"Dockerfile": dockerfile(busybox_base, "osbs/legacy")})
    legacy = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": "legacy-made-by-osbs-client", "labels": {"git-repo-name": "legacy", "git-branch": "main", "is_autorebuild": "true"}},
        "spec": {
            "source": {"git": {"uri": uri, "ref": "main"}},
            "strategy": {"dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "%s/osbs/legacy:old" % osbs_engine.registry}},
        },
    }
    kubectl(osbs_engine, "create", "--validate=false", "-f", "-", stdin=json.dumps(legacy))
    result = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/legacy"))
    assert result["changed"] is True, result
    assert result["name"] == "legacy-made-by-osbs-client"
    out = kubectl(osbs_engine, "get", "bc", "-l", "git-repo-name=legacy", "-o", "name").split()
    assert out == ["buildconfig.build.openshift.io/legacy-made-by-osbs-client"]
    bc = get_bc(osbs_engine, "legacy-made-by-osbs-client")
    assert bc["spec"]["output"]["to"]["name"] == "%s/osbs/legacy:latest" % osbs_engine.registry


@pytest.mark.slow
def test_user_build_marks_the_buildconfig_and_is_idempotent(osbs_engine, busybox_base, app_repo):
    _, uri, commit = app_repo
    bc = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit))
    name = bc["name"]

    check = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name), check_mode=True)
    assert check["changed"] is True and check["action"] == "would_start"
    assert list_builds(osbs_engine, name) == []

    build = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert build.get("failed") is not True, build.get("msg")
    assert build["changed"] is True and build["action"] == "started"
    assert build["phase"] == "Complete"
    assert build["git_commit"] == commit
    assert build["image_digest"].startswith("sha256:")
    assert build["image_reference"].endswith("@" + build["image_digest"])

    assert get_bc(osbs_engine, name)["metadata"]["labels"]["is_autorebuild"] == "true"
    builds = list_builds(osbs_engine, name)
    assert len(builds) == 1
    assert builds[0]["metadata"]["labels"]["is_autorebuild"] == "false"

    writes = osbs_engine.writes()
    again = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=name, git_commit=commit))
    assert again["changed"] is False and again["action"] == "existing"
    assert again["name"] == build["name"]
    assert osbs_engine.writes() == writes
    assert len(list_builds(osbs_engine, name)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("when_running", ["fail", "wait"])
def test_two_builds_at_the_same_moment_start_one(osbs_engine, busybox_base, tmp_path, when_running):
    uri, commit = make_git_repo(
        tmp_path / ("race-" + when_running),
        {"Dockerfile": dockerfile(busybox_base, "osbs/race-" + when_running, run="sleep 2")},
    )
    bc = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/race-" + when_running))
    results = [None, None]
    barrier = threading.Barrier(2)

    def build(slot):
        barrier.wait()
        results[slot] = run_module(osbs_engine, "osbs_build", dict(
            namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit, when_running=when_running))

    threads = [threading.Thread(target=build, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(list_builds(osbs_engine, bc["name"])) == 1, results
    # The loser never undoes the winner's mark: builds the cluster starts later are autorebuilds.
    assert get_bc(osbs_engine, bc["name"])["metadata"]["labels"]["is_autorebuild"] == "true"
    actions = sorted(r.get("action", "refused") if not r.get("failed") else "refused" for r in results)
    if when_running == "fail":
        # The loser either saw the winner's build running (refused) or already Complete (existing).
        assert actions in (["refused", "started"], ["existing", "started"]), results
        refused = [r for r in results if r.get("failed")]
        for r in refused:
            assert "in progress" in r["msg"] and bc["name"] in r["msg"]
    else:
        assert actions == ["existing", "started"], results


@pytest.mark.slow
def test_failing_dockerfile_fails_with_the_failing_step(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "broken", {
        "Dockerfile": dockerfile(busybox_base, "osbs/broken", run="echo about to fail && exit 3"),
    })
    bc = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/broken"))
    result = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit))
    assert result["failed"] is True
    assert result["phase"] == "Failed"
    assert "DockerBuildFailed" in result["msg"]
    assert "exit 3" in result["msg"]


@pytest.mark.slow
def test_build_refuses_while_another_runs_and_buildconfig_refuses_changes(osbs_engine, busybox_base, tmp_path):
    repo = tmp_path / "slow"
    uri, commit = make_git_repo(repo, {"Dockerfile": dockerfile(busybox_base, "osbs/slow", run="sleep 4")})
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/slow")
    bc = run_module(osbs_engine, "osbs_buildconfig", args)
    started = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit, wait=False))
    assert started["action"] == "started"

    _, new_commit = commit_files(repo, {"README": "new\n"})
    refused = run_module(osbs_engine, "osbs_buildconfig", dict(args, git_commit=new_commit))
    assert refused["failed"] is True
    assert started["name"] in refused["msg"] and "in progress" in refused["msg"]

    waited = run_module(osbs_engine, "osbs_buildconfig", dict(args, git_commit=new_commit, when_running="wait", wait_timeout=300))
    assert waited["changed"] is True, waited.get("msg")


@pytest.mark.parametrize("module", ["osbs_buildconfig", "osbs_build"])
def test_ansible_doc_reads_completely(module):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "osbs.flow.%s" % module], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES", "check_mode", "diff_mode", "idempotent", "kubeconfig"):
        assert section in proc.stdout, section
    assert "[ERROR]" not in proc.stderr


@pytest.mark.slow
def test_disabled_autorebuilds_pause_the_trigger_and_enabling_unpauses_it(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "tool", {
        "Dockerfile": dockerfile(busybox_base, "osbs/tool"),
        ".osbs-repo-config": "[autorebuild]\nenabled = false\n",
    })
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/tool", autorebuild_enabled=False)
    paused = run_module(osbs_engine, "osbs_buildconfig", args)
    [trigger] = paused["buildconfig"]["spec"]["triggers"]
    assert trigger["imageChange"]["paused"] is True
    assert run_module(osbs_engine, "osbs_buildconfig", args)["changed"] is False

    enabled = run_module(osbs_engine, "osbs_buildconfig", dict(args, autorebuild_enabled=True), diff=True)
    assert enabled["changed"] is True
    [trigger] = get_bc(osbs_engine, paused["name"])["spec"]["triggers"]
    assert "paused" not in trigger["imageChange"]


@pytest.mark.slow
def test_a_changed_buildconfig_gets_a_new_build_not_the_old_one(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "recipe", {"Dockerfile": "ARG GREETING=hi\n" + dockerfile(busybox_base, "osbs/recipe", run="echo $GREETING > /g")})
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/recipe")
    bc = run_module(osbs_engine, "osbs_buildconfig", args)
    first = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit))
    assert first["action"] == "started", first.get("msg")

    assert run_module(osbs_engine, "osbs_buildconfig", dict(args, build_args={"GREETING": "hello"}))["changed"] is True
    second = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit))
    assert second["action"] == "started", "the build of the old recipe was returned for the new one"
    assert second["name"] != first["name"]


@pytest.mark.slow
def test_branches_with_the_same_label_value_do_not_clash(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "branches", {"Dockerfile": dockerfile(busybox_base, "osbs/branches")})
    names = set()
    for branch in ("feature/x", "feature-x"):
        result = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, git_branch=branch, image="osbs/branches"))
        assert result.get("failed") is not True, result.get("msg")
        assert result["buildconfig"]["spec"]["source"]["git"]["ref"] == commit
        assert json.loads(result["buildconfig"]["metadata"]["annotations"]["osbs.flow/bump-release"])["git_branch"] == branch
        names.add(result["name"])
    assert len(names) == 2
    again = run_module(osbs_engine, "osbs_buildconfig", bc_args(osbs_engine, busybox_base, uri, commit, git_branch="feature/x", image="osbs/branches"))
    assert again["changed"] is False


def test_a_git_uri_with_credentials_is_refused_and_nothing_is_written(osbs_engine, busybox_base):
    writes = osbs_engine.writes()
    result = run_module(osbs_engine, "osbs_buildconfig", bc_args(
        osbs_engine, busybox_base, "https://ci-token:s3cret@git.example.com/ns/app.git", "0" * 40, image="osbs/secret"))
    assert result["failed"] is True
    assert "s3cret" not in result["msg"]
    assert "https://***@git.example.com/ns/app.git carries credentials" in result["msg"]
    assert "git_source_secret" in result["msg"]
    assert osbs_engine.writes() == writes


@pytest.mark.slow
def test_image_change_triggers_added_by_people_stay(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "extra-trigger", {"Dockerfile": dockerfile(busybox_base, "osbs/extra-trigger")})
    args = bc_args(osbs_engine, busybox_base, uri, commit, name="extra-trigger", image="osbs/extra-trigger")
    run_module(osbs_engine, "osbs_buildconfig", args)
    theirs = {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "tools:stable"}, "paused": True}}
    kubectl(osbs_engine, "patch", "bc", "extra-trigger", "--type=json", "-p",
            json.dumps([{"op": "add", "path": "/spec/triggers/-", "value": theirs}]))
    _, new_commit = commit_files(tmp_path / "extra-trigger", {"README": "x\n"})
    assert run_module(osbs_engine, "osbs_buildconfig", dict(args, git_commit=new_commit))["changed"] is True
    triggers = get_bc(osbs_engine, "extra-trigger")["spec"]["triggers"]
    assert theirs in triggers
    assert [t["imageChange"]["from"]["name"] for t in triggers if t["type"] == "ImageChange"] == ["osbs-busybox:latest", "tools:stable"]


def image_layers(engine, reference):
    done = subprocess.run(["skopeo", "inspect", "--authfile", engine.env["REGISTRY_AUTH_FILE"],
                           "--cert-dir", str(engine.state_dir / "certs.d" / engine.registry), "docker://%s" % reference],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["Layers"]


@pytest.mark.slow
def test_image_optimization_policy_squashes_what_the_dockerfile_adds(osbs_engine, busybox_base, tmp_path):
    uri, commit = make_git_repo(tmp_path / "squashed", {
        "Dockerfile": dockerfile(busybox_base, "osbs/squashed", run="echo one > /one") + "RUN echo two > /two\n"})
    args = bc_args(osbs_engine, busybox_base, uri, commit, image="osbs/squashed", image_optimization_policy="SkipLayers")
    bc = run_module(osbs_engine, "osbs_buildconfig", args)
    assert bc["buildconfig"]["spec"]["strategy"]["dockerStrategy"]["imageOptimizationPolicy"] == "SkipLayers"
    # Not given: the BuildConfig keeps its policy, and nothing changes.
    args.pop("image_optimization_policy")
    assert run_module(osbs_engine, "osbs_buildconfig", args)["changed"] is False

    build = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit))
    assert build["phase"] == "Complete", build.get("msg")
    assert len(image_layers(osbs_engine, build["image_reference"])) == len(image_layers(osbs_engine, busybox_base)) + 1

    layered = run_module(osbs_engine, "osbs_buildconfig", dict(args, image_optimization_policy="None"), diff=True)
    assert layered["changed"] is True and "imageOptimizationPolicy" in json.dumps(layered["diff"])
    again = run_module(osbs_engine, "osbs_build", dict(namespace=osbs_engine.namespace, buildconfig=bc["name"], git_commit=commit))
    assert again["action"] == "started" and again["phase"] == "Complete", again.get("msg")
    assert len(image_layers(osbs_engine, again["image_reference"])) == len(image_layers(osbs_engine, busybox_base)) + 2
