"""osbs-client's BuildConfig names and git labels, as naming.py computes them to find BuildConfigs osbs-client made,
against what osbs-client's own BuildRequest.render() gave at 0.15, 0.24, 0.39 and 0.48
(tests/data/osbs-client/names.json, recorded by hack/render_osbs_client_buildconfigs.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.osbs.flow.plugins.module_utils.naming import (
    branch_label_values,
    osbs_client_label_value,
    osbs_client_names,
    repo_label_values,
)
from ansible_collections.osbs.flow.plugins.module_utils.osbs_adoption import EXACT, LABEL_ONLY, NO_BRANCH, branch_match, describe_changes

NAMES = json.loads((Path(__file__).resolve().parents[3] / "data" / "osbs-client" / "names.json").read_text())
# Which naming rule each recorded release follows (0.39 has 0.38's: the hash of the repository name and branch).
RULE = {"0.15": "0.15", "0.24": "0.24", "0.39": "0.38", "0.48": "0.48"}
# What OpenShift accepts as a label value; a BuildConfig with any other never existed.
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
ROWS = [(release, row) for release, rows in sorted(NAMES["releases"].items()) for row in rows if "error" not in row]


@pytest.mark.parametrize("release, row", ROWS, ids=["%s %s %s" % (r, row["git_uri"][-30:], row["git_branch"]) for r, row in ROWS])
def test_names_and_labels_are_the_ones_osbs_client_rendered(release, row):
    assert osbs_client_names(row["git_uri"], row["git_branch"])[RULE[release]] == row["name"]
    for label, value in row["labels"].items():
        if not LABEL_VALUE.match(value):
            continue
        if label == "git-repo-name":
            assert value in repo_label_values(row["git_uri"])
        elif label == "git-branch":
            assert value in branch_label_values(row["git_branch"])
        else:
            assert value == osbs_client_label_value(row["git_uri"])


def test_every_release_was_recorded_with_names_and_refusals():
    assert sorted(NAMES["releases"]) == ["0.15", "0.24", "0.39", "0.48"]
    assert len(ROWS) >= 30
    # 0.15 and 0.24 refused a branch with `/` in the name; later releases dropped the character.
    assert [row["git_branch"] for row in NAMES["releases"]["0.24"] if "error" in row] == ["release/2.0", "b" * 40]


def bc(ref, labels=None, annotations=None):
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}}, "spec": {"source": {"git": {"ref": ref}}}}


FULL = {"git-full-repo": "httpsgit.example.comnsapp.git"}  # osbs-client 0.48 and later, which sanitised the labels


@pytest.mark.parametrize("buildconfig, match", [
    (bc("release/2.0"), EXACT),  # 0.15: no labels, the ref is the branch
    (bc("a" * 40, {"git-branch": "release/2.0"}), EXACT),  # 0.30 to 0.47: the label as it is
    (bc("master", {"git-branch": "release/2.0"}), EXACT),  # the label decides whatever the ref (`osbs build` passed master)
    (bc("release/2.0", {"git-branch": "main"}), None),
    (bc("a" * 40, dict(FULL, **{"git-branch": "release2.0"})), LABEL_ONLY),  # 0.48's sanitized label: the name must confirm
    (bc("a" * 40, {"git-branch": "release2.0"}), None),  # before 0.48 that label is branch release2.0's
    (bc("a" * 40, dict(FULL, **{"git-branch": "release-2.0"})), None),  # osbs.flow's form is not osbs-client's
    (bc("a" * 40, {"git-branch": "release2.1"}), None),
    (bc("a" * 40), NO_BRANCH),  # nothing says: only its name can
    (bc("a" * 40, {"git-branch": "release2.0"}, {"osbs.flow/bump-release": '{"git_branch": "release/3.0"}'}), None),
    (bc("main"), None),
])
def test_which_branch_a_buildconfig_is_for(buildconfig, match):
    assert branch_match(buildconfig, "release/2.0") == match


def test_changes_name_each_field():
    before = {"spec": {"strategy": {"type": "Custom", "customStrategy": {"env": []}}, "source": {"git": {"ref": "main"}}}}
    after = {"spec": {"strategy": {"type": "Docker", "dockerStrategy": {}}, "source": {"git": {"ref": "main"}}}}
    assert describe_changes(before, after) == [
        "spec.strategy.customStrategy.env removed (was [])",
        "spec.strategy.dockerStrategy set to {}",
        "spec.strategy.type: Custom -> Docker",
    ]


def test_only_label_values_the_server_accepts_are_selected_on():
    # A selector with any other value is a 400, and no BuildConfig can carry one.
    assert branch_label_values("release/2.0") == {"release-2.0", "release2.0"}
    assert repo_label_values("https://git.example.com/ns/app..git") == {"app"}  # osbs-client's `app.` cannot exist
    assert repo_label_values("https://git.example.com/ns/Web_App.git") == {"ebpp", "Web_App"}  # 0.48 kept [-a-z0-9.]
    assert all(len(value) <= 63 for value in repo_label_values("https://git.example.com/ns/" + "r" * 80 + ".git"))
