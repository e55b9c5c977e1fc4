"""BuildConfigs as osbs-client 0.15, 0.24, 0.39 and 0.48 made them (rendered by osbs-client itself:
tests/data/osbs-client/, hack/render_osbs_client_buildconfigs.py) are adopted by osbs_buildconfig on osbs-local:
found by their labels or by their name, changed in place (no second BuildConfig, no second ImageChange trigger),
and the result says what changed, in the diff and in `adopted`."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.naming import osbs_client_names
from testlib import make_git_repo, own_namespace, run_module, run_playbook

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "osbs-client"


def recorded(release):
    return json.loads((DATA / ("buildconfig-%s.json" % release)).read_text())


def api(engine, kind, name="", namespace=None):
    group = "image.openshift.io" if kind.startswith("image") else "build.openshift.io"
    return "%s/apis/%s/v1/namespaces/%s/%s%s" % (engine.base, group, namespace or engine.namespace, kind, "/" + name if name else "")


def import_base(osbs_engine, busybox_base, namespace=None):
    """The ImageStreamTag the recorded triggers watch (osbs-busybox:latest), imported; the image it resolves to,
    which a live cluster's trigger has already seen (its lastTriggeredImageID)."""
    imported = osbs_engine.session().post(api(osbs_engine, "imagestreamimports", namespace=namespace), timeout=60, json={
        "kind": "ImageStreamImport", "apiVersion": "image.openshift.io/v1", "metadata": {"name": "osbs-busybox"},
        "spec": {"import": True, "images": [{"from": {"kind": "DockerImage", "name": busybox_base}, "to": {"name": "latest"}}]}})
    assert imported.status_code in (200, 201), imported.text
    return imported.json()["status"]["images"][0]["image"]["dockerImageReference"]


@pytest.fixture
def base_seen(osbs_engine, busybox_base):
    return import_base(osbs_engine, busybox_base)


@pytest.fixture
def adoption_namespace(osbs_engine):
    """A namespace of the test's own: the recorded BuildConfig names are the same in every test of this file."""
    with own_namespace(osbs_engine, "adopt") as name:
        yield name


@pytest.mark.parametrize("release, found_by", [
    ("0.15", "name legacy-v015-main (the name osbs-client 0.15 and 0.24 gave it)"),  # no labels yet: by name alone
    ("0.24", "labels git-repo-name=a-rather-long-repository-name-for-osbs-client,git-branch=rhel-8.4-candidate"),
    ("0.39", "labels git-repo-name=legacy-v039,git-branch=main"),  # the ref is a commit: the branch is in the label
    ("0.48", "labels git-repo-name=legacy-v048,git-branch=release2.0"),  # labels sanitized (release/2.0)
])
def test_a_buildconfig_osbs_client_made_is_adopted_in_place_and_the_changes_are_reported(
        osbs_engine, busybox_base, base_seen, release, found_by):
    data = recorded(release)
    legacy = copy.deepcopy(data["buildconfig"])
    name = legacy["metadata"]["name"]
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    http = osbs_engine.session()
    created = http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60)
    assert created.status_code == 201, created.text

    args = dict(namespace=osbs_engine.namespace, git_uri=data["git_uri"], git_branch=data["git_branch"],
                git_commit=data["git_commit"], base_image=busybox_base, image="osbs/legacy-" + release.replace(".", ""),
                registry_uri=osbs_engine.registry, registry_secret=osbs_engine.registry_secret)
    writes = osbs_engine.writes()
    checked = run_module(osbs_engine, "osbs_buildconfig", args, check_mode=True, diff=True)
    assert checked.get("failed") is not True, checked
    assert osbs_engine.writes() == writes, "check mode wrote"
    assert checked["changed"] is True and checked["name"] == name and checked["adopted"]["found_by"] == found_by

    result = run_module(osbs_engine, "osbs_buildconfig", args, diff=True)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["name"] == name
    adopted = result["adopted"]
    assert adopted["name"] == name and adopted["found_by"] == found_by
    # What changed is said, and the diff holds the same: osbs-client's custom strategy became a docker one.
    assert "spec.strategy.type: Custom -> Docker" in adopted["changes"], adopted["changes"]
    assert any(re.match(r"spec\.strategy\.customStrategy\.env\[(ATOMIC_REACTOR|DOCK)_PLUGINS\] removed", line) for line in adopted["changes"])
    assert any(line.startswith("spec.output.to.name: registry.example.com/osbs/legacy:") for line in adopted["changes"])
    assert result["diff"]["before"]["spec"]["strategy"]["type"] == "Custom"
    assert result["diff"]["after"]["spec"]["strategy"]["type"] == "Docker"

    # One BuildConfig for the repository, the adopted one, with one ImageChange trigger: osbs-client's, kept with
    # what it has seen, so the adoption starts no build.
    items = http.get(api(osbs_engine, "buildconfigs"), timeout=60).json()["items"]
    same_repo = [bc["metadata"]["name"] for bc in items if bc["spec"]["source"]["git"]["uri"] == data["git_uri"]]
    assert same_repo == [name]
    bc = http.get(api(osbs_engine, "buildconfigs", name), timeout=60).json()
    triggers = [t for t in bc["spec"]["triggers"] if t["type"] == "ImageChange"]
    assert triggers == [{"type": "ImageChange", "imageChange": {
        "from": {"kind": "ImageStreamTag", "name": "osbs-busybox:latest"}, "lastTriggeredImageID": base_seen}}]
    assert bc["metadata"]["labels"]["is_autorebuild"] == "false"
    builds = http.get("%s/apis/build.openshift.io/v1/namespaces/%s/builds" % (osbs_engine.base, osbs_engine.namespace),
                      params={"labelSelector": "buildconfig=%s" % name[:63]}, timeout=60).json()["items"]
    assert builds == []

    # Now osbs.flow's own: found again, nothing to change, nothing written, and no longer reported as adopted.
    writes = osbs_engine.writes()
    again = run_module(osbs_engine, "osbs_buildconfig", args)
    assert again["changed"] is False and again["name"] == name and "adopted" not in again, again
    assert osbs_engine.writes() == writes


@pytest.mark.parametrize("ref, spelling", [
    ("master", None),  # `osbs build -b main` (0.39) passed --git-commit's default as the ref
    ("HEAD", None),
    ("a1b2c3d", None),  # a short commit
    (None, "git://GIT.example.com/containers/legacy-v039"),  # OSBS dist-git's git:// beside today's https://
    (None, "ssh://git@git.example.com/containers/legacy-v039.git/"),
])
def test_a_039_buildconfig_whatever_its_ref_or_uri_spelling_is_adopted_not_doubled(osbs_engine, busybox_base, base_seen, ref, spelling):
    data = recorded("0.39")
    legacy = copy.deepcopy(data["buildconfig"])
    name = "legacy-v039-%s" % (ref or spelling.split(":", 1)[0]).lower()
    legacy["metadata"]["name"] = name
    legacy["spec"]["source"]["git"]["ref"] = ref or data["git_commit"]
    legacy["spec"]["source"]["git"]["uri"] = spelling or data["git_uri"]
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    http = osbs_engine.session()
    remove_repository_buildconfigs(osbs_engine, "legacy-v039")  # the 0.39 adoption test's, now osbs.flow's
    assert http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60).status_code == 201
    try:
        result = run_module(osbs_engine, "osbs_buildconfig", dict(
            namespace=osbs_engine.namespace, git_uri=data["git_uri"], git_branch=data["git_branch"], git_commit=data["git_commit"],
            base_image=busybox_base, image="osbs/legacy-v039", registry_uri=osbs_engine.registry,
            registry_secret=osbs_engine.registry_secret))
        assert result.get("failed") is not True, result
        assert result["name"] == name and result["adopted"]["found_by"] == "labels git-repo-name=legacy-v039,git-branch=main"
        items = http.get(api(osbs_engine, "buildconfigs"), timeout=60).json()["items"]
        assert [bc["metadata"]["name"] for bc in items if bc["metadata"].get("labels", {}).get("git-repo-name") == "legacy-v039"] == [name]
    finally:
        remove_repository_buildconfigs(osbs_engine, "legacy-v039")


def remove_repository_buildconfigs(engine, repo_label):
    http = engine.session()
    for bc in http.get(api(engine, "buildconfigs"), timeout=60).json()["items"]:
        if bc["metadata"].get("labels", {}).get("git-repo-name") == repo_label:
            assert http.delete(api(engine, "buildconfigs", bc["metadata"]["name"]), timeout=60).status_code == 200


def test_a_candidate_that_cannot_be_told_apart_is_an_error_naming_it_and_nothing_is_written(osbs_engine, busybox_base, base_seen):
    """A 0.48 BuildConfig labelled as release/2.0 (release2.0) under a name that is not osbs-client's for it may be
    another branch's: named with what to do, nothing written, no second BuildConfig."""
    data = recorded("0.48")
    legacy = copy.deepcopy(data["buildconfig"])
    legacy["metadata"]["name"] = "renamed-by-hand"
    legacy["spec"]["source"]["git"]["uri"] = data["git_uri"].replace("legacy-v048", "legacy-unsure")
    legacy["metadata"]["labels"]["git-repo-name"] = "legacy-unsure"
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    http = osbs_engine.session()
    assert http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60).status_code == 201
    writes = osbs_engine.writes()
    result = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri=legacy["spec"]["source"]["git"]["uri"], git_branch=data["git_branch"],
        base_image=busybox_base, image="osbs/legacy-unsure", registry_uri=osbs_engine.registry,
        registry_secret=osbs_engine.registry_secret))
    assert result["failed"] is True
    assert "BuildConfig renamed-by-hand in namespace %s may be the BuildConfig of" % osbs_engine.namespace in result["msg"]
    assert "adopt it with name=renamed-by-hand" in result["msg"], result["msg"]
    assert osbs_engine.writes() == writes


def test_two_buildconfigs_for_one_branch_are_an_error_naming_both_and_nothing_is_written(osbs_engine, busybox_base, base_seen):
    """What an older osbs.flow left on a cluster where it missed osbs-client's BuildConfig (ref = commit): two of them.
    Which to keep is the user's decision."""
    data = recorded("0.39")
    http = osbs_engine.session()
    uri = data["git_uri"].replace("legacy-v039", "twice")
    legacy = copy.deepcopy(data["buildconfig"])
    legacy["metadata"].update(name="twice-main-1a2b3", labels=dict(legacy["metadata"]["labels"], **{"git-repo-name": "twice"}))
    legacy["spec"]["source"]["git"]["uri"] = uri
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    assert http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60).status_code == 201
    ours = copy.deepcopy(legacy)
    ours["metadata"].update(name="twice-main-0c0ffee0", annotations={"osbs.flow/bump-release": json.dumps({"git_branch": "main"})})
    assert http.post(api(osbs_engine, "buildconfigs"), json=ours, timeout=60).status_code == 201

    writes = osbs_engine.writes()
    result = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", base_image=busybox_base, image="osbs/twice",
        registry_uri=osbs_engine.registry, registry_secret=osbs_engine.registry_secret))
    assert result["failed"] is True
    assert result["msg"] == (
        "BuildConfigs twice-main-0c0ffee0, twice-main-1a2b3 in namespace %s are all for %s at branch main (labels "
        "git-repo-name=twice,git-branch=main; git-repo-name=twice,git-branch=main): keep one (delete the others, or remove "
        "their git labels) or name the one to use with the name option" % (osbs_engine.namespace, uri))
    assert osbs_engine.writes() == writes


def test_a_legacy_name_of_another_repository_is_not_adopted(osbs_engine, busybox_base, base_seen):
    """osbs-client 0.15's `<repo>-<branch>` of a fork (same repository name, other URI) is another repository's."""
    data = recorded("0.15")
    http = osbs_engine.session()
    fork = copy.deepcopy(data["buildconfig"])
    fork["metadata"]["name"] = "forked-main"
    fork["spec"]["source"]["git"]["uri"] = "https://git.example.com/someone-else/forked.git"
    fork["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    created = http.post(api(osbs_engine, "buildconfigs"), json=fork, timeout=60)
    assert created.status_code == 201, created.text

    result = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri="https://git.example.com/containers/forked.git", git_branch="main",
        base_image=busybox_base, image="osbs/forked", registry_uri=osbs_engine.registry,
        registry_secret=osbs_engine.registry_secret))
    assert result.get("failed") is not True, result
    assert result["name"] != "forked-main" and "adopted" not in result
    kept = http.get(api(osbs_engine, "buildconfigs", "forked-main"), timeout=60).json()
    assert kept["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"], "the fork's was changed"


@pytest.mark.slow
@pytest.mark.parametrize("release", ["0.15", "0.24", "0.39", "0.48"])
def test_the_build_playbook_adopts_builds_and_reruns_with_one_buildconfig(osbs_engine, busybox_base, adoption_namespace, tmp_path, release):
    """The whole flow on a real repository of the recorded name and branch: osbs-client's BuildConfig (0.15: no
    labels, found by name; 0.24: labels, the ref the branch; 0.39 and 0.48: the ref a commit, the branch in the
    label, sanitized by 0.48) is adopted with its changes in the diff, builds the image, and a rerun changes nothing."""
    data = recorded(release)
    repo = data["git_uri"].rstrip("/").rsplit("/", 1)[-1][: -len(".git")]
    uri, commit = make_git_repo(tmp_path / repo, {"Dockerfile": "FROM %s\nLABEL name=osbs/%s\nRUN echo adopted > /adopted\n"
                                                                % (busybox_base, repo[:29])}, branch=data["git_branch"])
    legacy = copy.deepcopy(data["buildconfig"])
    if release == "0.48":  # its name hashes the URI's path, which is the local repository's here
        legacy["metadata"]["name"] = osbs_client_names(uri, data["git_branch"])["0.48"]
    name = legacy["metadata"]["name"]
    # The ref as that release wrote it: the branch up to 0.29 (bump_release), the commit from 0.30 on.
    legacy["spec"]["source"]["git"].update(uri=uri, ref=commit if release in ("0.39", "0.48") else data["git_branch"])
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = import_base(osbs_engine, busybox_base, adoption_namespace)
    http = osbs_engine.session()
    created = http.post(api(osbs_engine, "buildconfigs", namespace=adoption_namespace), json=legacy, timeout=60)
    assert created.status_code == 201, created.text

    extra = {"git_uri": uri, "git_branch": data["git_branch"], "registry_uri": osbs_engine.registry, "autorebuild": False,
             "registry_secret": "", "osbs_namespace": adoption_namespace}  # the builder ServiceAccount's secret pushes
    first = run_playbook(osbs_engine, "osbs.flow.build", extra, env={"ANSIBLE_DIFF_ALWAYS": "true"})
    assert first.returncode == 0, first.stdout[-4000:]
    assert re.search(r'^-\s+"customStrategy": \{', first.stdout, re.M), first.stdout[-4000:]  # the diff shows it
    assert re.search(r'^\+\s+"dockerStrategy": \{', first.stdout, re.M)
    assert "build      : %s-1 Complete (started)" % name in first.stdout, first.stdout[-3000:]

    items = http.get(api(osbs_engine, "buildconfigs", namespace=adoption_namespace), timeout=60).json()["items"]
    assert [bc["metadata"]["name"] for bc in items if bc["spec"]["source"]["git"]["uri"] == uri] == [name]

    writes = osbs_engine.writes()
    again = run_playbook(osbs_engine, "osbs.flow.build", extra)
    assert again.returncode == 0, again.stdout[-4000:]
    assert "build      : %s-1 Complete (existing)" % name in again.stdout, again.stdout[-3000:]
    assert osbs_engine.writes() == writes, "a rerun with nothing new wrote"


def test_a_048_buildconfig_without_triggers_gets_one_and_the_result_says_autorebuilds_are_now_on(osbs_engine, busybox_base, base_seen):
    """osbs-client 0.41+ removed the triggers of a repository without .osbs-repo-config (autorebuild disabled there);
    osbs.flow reads the missing file as enabled: the trigger it adds is in the changes and in a warning."""
    data = json.loads((DATA / "buildconfig-0.48-no-repo-config.json").read_text())
    legacy = data["buildconfig"]
    name = legacy["metadata"]["name"]
    assert "triggers" not in legacy["spec"]
    http = osbs_engine.session()
    assert http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60).status_code == 201
    result = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri=data["git_uri"], git_branch=data["git_branch"], git_commit=data["git_commit"],
        base_image=busybox_base, image="osbs/legacy-norepoconfig", registry_uri=osbs_engine.registry,
        registry_secret=osbs_engine.registry_secret))
    assert result.get("failed") is not True, result
    assert result["name"] == name
    assert "spec.triggers[ImageChange osbs-busybox:latest] set to" in " ".join(result["adopted"]["changes"]), result["adopted"]
    warning = "autorebuilds turned on for BuildConfig %s" % name
    assert result["adopted"]["warnings"][0].startswith(warning)
    assert warning in json.dumps(result["warnings"]), result["warnings"]  # the module warns too
    triggers = http.get(api(osbs_engine, "buildconfigs", name), timeout=60).json()["spec"]["triggers"]
    assert [t["imageChange"]["from"]["name"] for t in triggers if t["type"] == "ImageChange"] == ["osbs-busybox:latest"]


def test_adopting_without_git_commit_keeps_the_commit_osbs_client_recorded(osbs_engine, busybox_base, base_seen):
    """The one commit rule: a 0.30+ BuildConfig's ref is the commit of its last build; adopting it with no git_commit
    keeps that commit (and records it) rather than pointing the trigger's builds at the branch head."""
    data = recorded("0.39")
    legacy = copy.deepcopy(data["buildconfig"])
    uri = data["git_uri"].replace("legacy-v039", "legacy-keepref")
    legacy["metadata"].update(name="legacy-keepref-main-1a2b3", labels=dict(legacy["metadata"]["labels"], **{"git-repo-name": "legacy-keepref"}))
    legacy["spec"]["source"]["git"].update(uri=uri, ref=data["git_commit"])
    legacy["spec"]["triggers"][0]["imageChange"]["lastTriggeredImageID"] = base_seen
    http = osbs_engine.session()
    assert http.post(api(osbs_engine, "buildconfigs"), json=legacy, timeout=60).status_code == 201
    result = run_module(osbs_engine, "osbs_buildconfig", dict(
        namespace=osbs_engine.namespace, git_uri=uri, git_branch="main", base_image=busybox_base, image="osbs/legacy-keepref",
        registry_uri=osbs_engine.registry, registry_secret=osbs_engine.registry_secret))
    assert result.get("failed") is not True, result
    bc = http.get(api(osbs_engine, "buildconfigs", "legacy-keepref-main-1a2b3"), timeout=60).json()
    assert bc["spec"]["source"]["git"]["ref"] == data["git_commit"]
    assert json.loads(bc["metadata"]["annotations"]["osbs.flow/bump-release"]) == {"git_branch": "main", "git_ref": data["git_commit"]}
