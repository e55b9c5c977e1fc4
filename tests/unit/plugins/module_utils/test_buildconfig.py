"""What decides whether osbs_buildconfig changes anything: desired_spec and merge_buildconfig.

A rerun with the same parameters must write nothing, even after the server has
filled in its own fields; a changed parameter must change exactly its field;
what others put on the BuildConfig stays.
"""

import copy
import json

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import desired_spec, merge_buildconfig
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    BASE_IMAGE_ANNOTATION,
    BUMP_RELEASE_ANNOTATION,
    recorded_commit,
)

NS = "osbs"
NAME = "app-main"
BASE = "registry.example.com:5000/osbs/base:1.0"
SEEN = "registry.example.com:5000/osbs/base@sha256:" + "1" * 64


def params(**changes):
    base = dict(
        git_uri="https://git.example.com/osbs/app.git",
        git_branch="main",
        git_commit="a" * 40,
        git_source_secret=None,
        base_image=BASE,
        image="osbs/app",
        image_tag="latest",
        registry_uri="https://registry.example.com:5000",
        registry_secret=None,
        dockerfile_path="Dockerfile",
        context_dir=None,
        build_args={},
        no_cache=False,
        image_optimization_policy=None,
        repo_config_file=".osbs-repo-config",
        autorebuild_enabled=True,
        run_policy="Serial",
        labels={},
    )
    base.update(changes)
    return base


def as_the_server_keeps_it(buildconfig):
    """The BuildConfig after a create: server bookkeeping added, the trigger's seen image recorded, status."""
    stored = copy.deepcopy(buildconfig)
    stored["metadata"].update(resourceVersion="17", uid="5f0c", creationTimestamp="2026-01-01T00:00:00Z", generation=2)
    for trigger in stored["spec"]["triggers"]:
        if trigger["type"] == "ImageChange":
            trigger["imageChange"]["lastTriggeredImageID"] = SEEN
    stored["status"] = {"lastVersion": 3}
    return stored


def written(existing, **changes):
    """The BuildConfig osbs_buildconfig would write over `existing` with these parameters."""
    return merge_buildconfig(existing, NAME, NS, desired_spec(params(**changes), recorded_commit(existing)))


def test_the_same_parameters_give_the_same_desired_spec_whatever_the_order_of_build_args():
    first = desired_spec(params(build_args={"B": 2, "A": "1"}))
    second = desired_spec(params(build_args={"A": "1", "B": 2}))
    assert first == second
    assert first["spec"]["strategy"]["dockerStrategy"]["buildArgs"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_a_base_image_by_tag_gets_a_trigger_and_one_by_digest_or_scratch_gets_none():
    by_tag = desired_spec(params())
    assert by_tag["trigger_tag"] == "osbs-base:1.0"
    assert by_tag["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "ImageStreamTag", "name": "osbs-base:1.0"}
    by_digest = desired_spec(params(base_image=SEEN))
    assert by_digest["trigger_tag"] is None
    assert by_digest["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": SEEN}
    scratch = desired_spec(params(base_image="scratch"))
    assert scratch["trigger_tag"] is None and "from" not in scratch["spec"]["strategy"]["dockerStrategy"]


def test_without_git_commit_the_recorded_commit_is_kept_and_a_given_one_wins():
    kept = desired_spec(params(git_commit=None), recorded_git_ref="b" * 40)
    assert json.loads(kept["annotations"][BUMP_RELEASE_ANNOTATION]) == {"git_ref": "b" * 40, "git_branch": "main"}
    given = desired_spec(params(git_commit="c" * 40), recorded_git_ref="b" * 40)
    assert json.loads(given["annotations"][BUMP_RELEASE_ANNOTATION])["git_ref"] == "c" * 40


def test_disabled_autorebuilds_pause_the_trigger():
    assert desired_spec(params())["trigger_paused"] is False
    assert desired_spec(params(autorebuild_enabled=False))["trigger_paused"] is True
    created = merge_buildconfig(None, NAME, NS, desired_spec(params(autorebuild_enabled=False)))
    assert created["spec"]["triggers"][0]["imageChange"]["paused"] is True
    resumed = written(as_the_server_keeps_it(created), autorebuild_enabled=True)
    assert "paused" not in resumed["spec"]["triggers"][0]["imageChange"]


def test_a_new_buildconfig_has_our_parts_and_its_trigger_has_seen_the_current_image():
    created = merge_buildconfig(None, NAME, NS, desired_spec(params()), seen_image=SEEN)
    assert created["metadata"]["name"] == NAME and created["metadata"]["namespace"] == NS
    assert created["metadata"]["annotations"][BASE_IMAGE_ANNOTATION] == BASE
    assert created["spec"]["triggers"] == [{
        "type": "ImageChange",
        "imageChange": {"from": {"kind": "ImageStreamTag", "name": "osbs-base:1.0"}, "lastTriggeredImageID": SEEN},
    }]


def test_a_rerun_with_the_same_parameters_writes_nothing_once_the_server_has_filled_its_fields():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    # The seen image of a rerun is the current one, which may differ from what the trigger recorded: it is kept.
    again = merge_buildconfig(stored, NAME, NS, desired_spec(params(), recorded_commit(stored)), seen_image="sha256:other")
    assert again == stored


def test_a_rerun_without_git_commit_keeps_the_recorded_commit_and_writes_nothing():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    assert written(stored, git_commit=None) == stored


def test_a_changed_parameter_changes_its_field_and_nothing_else():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    changed = written(stored, dockerfile_path="Containerfile")
    assert changed != stored
    assert changed["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] == "Containerfile"
    changed["spec"]["strategy"]["dockerStrategy"]["dockerfilePath"] = "Dockerfile"
    assert changed == stored


def test_labels_are_the_given_ones_and_the_git_ones_and_a_new_label_is_a_change():
    created = merge_buildconfig(None, NAME, NS, desired_spec(params(labels={"team": "payments"})))
    assert created["metadata"]["labels"]["team"] == "payments"
    assert {"git-repo-name", "git-branch"} <= set(created["metadata"]["labels"])
    stored = as_the_server_keeps_it(created)
    relabelled = written(stored, labels={"team": "payments", "tier": "1"})
    assert relabelled["metadata"]["labels"] == dict(stored["metadata"]["labels"], tier="1")


def test_a_new_commit_is_a_change_of_the_bump_release_annotation_and_the_git_ref_only():
    """The one commit rule: the BuildConfig's ref is the recorded commit, so the cluster's trigger builds it too."""
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    changed = written(stored, git_commit="d" * 40)
    assert recorded_commit(changed) == "d" * 40
    assert changed["spec"]["source"]["git"]["ref"] == "d" * 40
    changed["spec"]["source"]["git"]["ref"] = stored["spec"]["source"]["git"]["ref"]
    assert changed["spec"] == stored["spec"]
    assert {k: v for k, v in changed["metadata"].items() if k != "annotations"} == \
        {k: v for k, v in stored["metadata"].items() if k != "annotations"}


def test_what_others_put_on_the_buildconfig_stays():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    stored["metadata"]["labels"]["team"] = "payments"
    stored["metadata"]["annotations"]["openshift.io/description"] = "the app"
    stored["spec"]["strategy"]["dockerStrategy"].update(env=[{"name": "X", "value": "1"}], forcePull=True)
    stored["spec"]["source"]["secrets"] = [{"secret": {"name": "s"}, "destinationDir": "d"}]
    stored["spec"]["output"]["imageLabels"] = [{"name": "vendor", "value": "me"}]
    stored["spec"]["triggers"].append({"type": "ConfigChange"})
    stored["spec"]["triggers"].append({"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "tools:1"}}})
    stored["spec"]["completionDeadlineSeconds"] = 600
    assert written(stored) == stored


def test_a_new_base_image_replaces_our_trigger_and_keeps_the_others():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    other = {"type": "ImageChange", "imageChange": {"from": {"kind": "ImageStreamTag", "name": "tools:1"}}}
    stored["spec"]["triggers"].append(other)
    moved = merge_buildconfig(stored, NAME, NS, desired_spec(params(base_image="registry.example.com:5000/osbs/base:2.0")),
                              seen_image="sha256:new")
    assert moved["spec"]["triggers"] == [other, {
        "type": "ImageChange",
        "imageChange": {"from": {"kind": "ImageStreamTag", "name": "osbs-base:2.0"}, "lastTriggeredImageID": "sha256:new"},
    }]


def test_a_base_image_pinned_by_digest_drops_our_trigger():
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params())))
    pinned = written(stored, base_image=SEEN)
    assert pinned["spec"]["triggers"] == []
    assert pinned["spec"]["strategy"]["dockerStrategy"]["from"] == {"kind": "DockerImage", "name": SEEN}


def test_dockerfile_path_and_context_dir_are_given_as_the_server_stores_them():
    """OpenShift's validation cleans both (path.Clean, `.` unset): the desired spec says what will be stored,
    so a rerun compares like with like (OAS validation.go validateRelativePath and validateSource)."""
    spec = desired_spec(params(dockerfile_path="./build//Dockerfile", context_dir="sub/"))["spec"]
    assert spec["strategy"]["dockerStrategy"]["dockerfilePath"] == "build/Dockerfile"
    assert spec["source"]["contextDir"] == "sub"
    spec = desired_spec(params(dockerfile_path=".", context_dir="./"))["spec"]
    assert "dockerfilePath" not in spec["strategy"]["dockerStrategy"] and "contextDir" not in spec["source"]
    stored = as_the_server_keeps_it(merge_buildconfig(None, NAME, NS, desired_spec(params(dockerfile_path="Dockerfile", context_dir="sub"))))
    assert written(stored, dockerfile_path="./Dockerfile", context_dir="sub/") == stored


@pytest.mark.parametrize("field, value", [("dockerfile_path", "../Dockerfile"), ("dockerfile_path", "/Dockerfile"),
                                          ("dockerfile_path", "a/../../Dockerfile"), ("context_dir", "../up")])
def test_a_path_that_leaves_the_repository_is_refused_before_any_write(field, value):
    with pytest.raises(OsbsFlowError, match="%s %r" % (field, value)):
        desired_spec(params(**{field: value}))


def default_trigger_buildconfig(base_tag="osbs-base:1.0"):
    """A BuildConfig as `oc new-build` makes it: a default ImageChange trigger, which watches the strategy's `from`."""
    return {
        "apiVersion": "build.openshift.io/v1", "kind": "BuildConfig",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": "3", "labels": {"build": NAME}},
        "spec": {
            "runPolicy": "Serial",
            "source": {"type": "Git", "git": {"uri": "https://git.example.com/osbs/app.git", "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": base_tag}}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}},
            "triggers": [{"type": "GitHub", "github": {"secret": "s"}}, {"type": "ConfigChange"},
                         {"type": "ImageChange", "imageChange": {"lastTriggeredImageID": SEEN}}],
        },
        "status": {"lastVersion": 1},
    }


def image_change_tags(buildconfig):
    """The ImageStreamTag each ImageChange trigger watches, a from-less one watching the strategy's (OAS ValidateBuildConfig)."""
    strategy_tag = buildconfig["spec"]["strategy"]["dockerStrategy"].get("from", {}).get("name")
    return [(t["imageChange"].get("from") or {}).get("name", strategy_tag)
            for t in buildconfig["spec"]["triggers"] if t["type"] == "ImageChange"]


def test_an_adopted_default_trigger_on_the_base_image_is_our_trigger_not_a_second_one():
    adopted = default_trigger_buildconfig()
    new = merge_buildconfig(adopted, NAME, NS, desired_spec(params()), seen_image="sha256:new")
    assert image_change_tags(new) == ["osbs-base:1.0"]
    # Its bookkeeping stays: the image it saw is not built again.
    assert {"type": "ImageChange", "imageChange": {"lastTriggeredImageID": SEEN}} in new["spec"]["triggers"]
    assert written(as_the_server_keeps_it(new)) == as_the_server_keeps_it(new)


def test_an_adopted_default_trigger_on_another_base_image_is_replaced_by_ours():
    adopted = default_trigger_buildconfig(base_tag="python:3.9")
    new = merge_buildconfig(adopted, NAME, NS, desired_spec(params()), seen_image="sha256:new")
    assert image_change_tags(new) == ["osbs-base:1.0"]
    assert new["spec"]["triggers"][-1] == {"type": "ImageChange", "imageChange": {
        "from": {"kind": "ImageStreamTag", "name": "osbs-base:1.0"}, "lastTriggeredImageID": "sha256:new"}}
    pinned = merge_buildconfig(adopted, NAME, NS, desired_spec(params(base_image=SEEN)))
    assert image_change_tags(pinned) == []
