"""What decides whether osbs_build starts a build or returns one that exists: same_recipe and matching_build."""

import copy

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.build import matching_build, same_recipe

NS = "osbs"
OLD_BASE = "sha256:" + "1" * 64
NEW_BASE = "sha256:" + "2" * 64
COMMIT = "a" * 40

BUILDCONFIG = {
    "metadata": {"name": "app-main", "namespace": NS},
    "spec": {
        "source": {"type": "Git", "git": {"uri": "https://git.example.com/osbs/app.git", "ref": "main"}},
        "strategy": {"type": "Docker", "dockerStrategy": {
            "dockerfilePath": "Dockerfile",
            "from": {"kind": "ImageStreamTag", "name": "osbs-base:1.0"},
            "buildArgs": [{"name": "A", "value": "1"}],
        }},
        "output": {"to": {"kind": "DockerImage", "name": "registry.example.com:5000/osbs/app:latest"}},
        "triggers": [{"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "osbs-base:1.0"}}}],
    },
}


def build_of(buildconfig, number, phase="Complete", commit=COMMIT, base=OLD_BASE, by_trigger=False):
    """A Build as instantiate makes it: source, strategy and output copied, `from` resolved to the base by digest."""
    spec = copy.deepcopy(buildconfig["spec"])
    strategy = spec["strategy"]["dockerStrategy"]
    strategy["from"] = {"kind": "DockerImage", "name": "registry.example.com:5000/osbs/base@" + base}
    build = {
        "metadata": {"name": "app-main-%d" % number, "namespace": NS,
                     "annotations": {"openshift.io/build.number": str(number)}},
        "spec": {"source": spec["source"], "strategy": spec["strategy"], "output": spec["output"],
                 "revision": {"type": "Git", "git": {"commit": commit}} if commit else None},
        "status": {"phase": phase},
    }
    if by_trigger:
        build["spec"]["triggeredBy"] = [{"imageChangeBuild": {"imageID": strategy["from"]["name"]}}]
    return build


def changed_buildconfig(**strategy):
    changed = copy.deepcopy(BUILDCONFIG)
    changed["spec"]["strategy"]["dockerStrategy"].update(strategy)
    return changed


# -- same_recipe ---------------------------------------------------------------------------------------

def test_a_build_of_the_buildconfig_as_it_is_has_the_same_recipe_although_its_from_was_resolved():
    assert same_recipe(build_of(BUILDCONFIG, 1), BUILDCONFIG)


@pytest.mark.parametrize("change", [
    lambda bc: bc["spec"]["strategy"]["dockerStrategy"].update(dockerfilePath="Containerfile"),
    lambda bc: bc["spec"]["strategy"]["dockerStrategy"].update(buildArgs=[{"name": "A", "value": "2"}]),
    lambda bc: bc["spec"]["strategy"]["dockerStrategy"].update(noCache=True),
    lambda bc: bc["spec"]["source"]["git"].update(ref="release"),
    lambda bc: bc["spec"]["source"].update(contextDir="sub"),
    lambda bc: bc["spec"]["output"]["to"].update(name="registry.example.com:5000/osbs/app:2"),
], ids=["dockerfile", "build-args", "no-cache", "branch", "context-dir", "output"])
def test_a_buildconfig_changed_since_the_build_is_another_recipe(change):
    build = build_of(BUILDCONFIG, 1)
    changed = copy.deepcopy(BUILDCONFIG)
    change(changed)
    assert not same_recipe(build, changed)


def test_the_secrets_the_cluster_fills_in_are_not_another_recipe():
    """OpenShift's build controller sets output.pushSecret, and instantiate dockerStrategy.pullSecret, from the
    builder ServiceAccount's secrets on a Build whose BuildConfig has none (docs/openshift-fidelity.md B2, B3)."""
    build = build_of(BUILDCONFIG, 1)
    build["spec"]["output"]["pushSecret"] = {"name": "builder-dockercfg-x7k2p"}
    build["spec"]["strategy"]["dockerStrategy"]["pullSecret"] = {"name": "builder-dockercfg-x7k2p"}
    assert same_recipe(build, BUILDCONFIG)
    assert matching_build([build], BUILDCONFIG, COMMIT, OLD_BASE, autorebuild=False) is build


@pytest.mark.parametrize("field", ["pushSecret", "pullSecret"])
def test_a_secret_the_buildconfig_names_must_be_the_builds(field):
    named = copy.deepcopy(BUILDCONFIG)
    where = named["spec"]["output"] if field == "pushSecret" else named["spec"]["strategy"]["dockerStrategy"]
    where[field] = {"name": "mine"}
    build = build_of(named, 1)
    assert same_recipe(build, named)
    (build["spec"]["output"] if field == "pushSecret" else build["spec"]["strategy"]["dockerStrategy"])[field] = {"name": "other"}
    assert not same_recipe(build, named)
    assert not same_recipe(build_of(BUILDCONFIG, 1), named), "a secret added to the BuildConfig since is another recipe"


def test_another_base_image_tag_alone_is_not_another_recipe():
    """The base is compared through its digest (matching_build), not through the strategy's `from`."""
    assert same_recipe(build_of(BUILDCONFIG, 1), changed_buildconfig(**{"from": {"kind": "ImageStreamTag", "name": "osbs-base:2.0"}}))


# -- matching_build, a user build ----------------------------------------------------------------------

def test_a_user_build_matches_the_newest_complete_build_of_the_commit_and_base():
    builds = [build_of(BUILDCONFIG, 3), build_of(BUILDCONFIG, 2), build_of(BUILDCONFIG, 1)]
    assert matching_build(builds, BUILDCONFIG, COMMIT, OLD_BASE, autorebuild=False) is builds[0]


@pytest.mark.parametrize("build, commit, base", [
    (build_of(BUILDCONFIG, 1, phase="Failed"), COMMIT, OLD_BASE),
    (build_of(BUILDCONFIG, 1, phase="Running"), COMMIT, OLD_BASE),
    (build_of(BUILDCONFIG, 1), "b" * 40, OLD_BASE),
    (build_of(BUILDCONFIG, 1), COMMIT, NEW_BASE),
    (build_of(changed_buildconfig(dockerfilePath="Old.Dockerfile"), 1), COMMIT, OLD_BASE),
], ids=["failed", "still-running", "other-commit", "other-base", "other-recipe"])
def test_a_user_build_does_not_match(build, commit, base):
    assert matching_build([build], BUILDCONFIG, commit, base, autorebuild=False) is None


def test_a_user_build_at_the_branch_head_matches_any_commit():
    build = build_of(BUILDCONFIG, 1, commit="b" * 40)
    assert matching_build([build], BUILDCONFIG, None, OLD_BASE, autorebuild=False) is build


def test_a_user_build_skips_a_failed_newer_build_for_an_older_complete_one():
    failed, complete = build_of(BUILDCONFIG, 2, phase="Failed"), build_of(BUILDCONFIG, 1)
    assert matching_build([failed, complete], BUILDCONFIG, COMMIT, OLD_BASE, autorebuild=False) is complete


# -- matching_build, an autorebuild --------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["New", "Running", "Complete"])
def test_an_autorebuild_adopts_a_build_from_the_new_base_of_the_recorded_commit_whatever_its_progress(phase):
    """The one commit rule (issue 16 part 2): a build of another commit is not the autorebuild, whoever started it."""
    build = build_of(BUILDCONFIG, 2, phase=phase, commit=COMMIT, base=NEW_BASE, by_trigger=True)
    assert matching_build([build], BUILDCONFIG, COMMIT, NEW_BASE, autorebuild=True) is build
    other = build_of(BUILDCONFIG, 3, phase=phase, commit="b" * 40, base=NEW_BASE, by_trigger=True)
    assert matching_build([other], BUILDCONFIG, COMMIT, NEW_BASE, autorebuild=True) is None


@pytest.mark.parametrize("phase", ["Failed", "Error", "Cancelled"])
def test_an_autorebuild_does_not_adopt_an_unsuccessful_build(phase):
    build = build_of(BUILDCONFIG, 2, phase=phase, base=NEW_BASE)
    assert matching_build([build], BUILDCONFIG, COMMIT, NEW_BASE, autorebuild=True) is None


def test_an_autorebuild_does_not_match_a_build_of_the_old_base_or_an_unknown_base():
    old = build_of(BUILDCONFIG, 1, base=OLD_BASE)
    assert matching_build([old], BUILDCONFIG, COMMIT, NEW_BASE, autorebuild=True) is None
    assert matching_build([old], BUILDCONFIG, COMMIT, None, autorebuild=True) is None


def test_an_autorebuild_of_a_buildconfig_without_a_tracked_base_matches_nothing():
    """No base digest to compare (a base image from scratch): an autorebuild never adopts a build for it."""
    unbased = build_of(BUILDCONFIG, 1, phase="Running")
    unbased["spec"]["strategy"]["dockerStrategy"].pop("from")
    assert matching_build([unbased], BUILDCONFIG, COMMIT, None, autorebuild=True) is None
