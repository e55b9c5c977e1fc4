# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The existing BuildConfig of (git repository, branch): osbs.flow's own, or one any osbs-client release made.

Teams moving from OSBS have BuildConfigs of every osbs-client release: named `<repo>-<branch>` (0.15), with the
characters of both taken in turn (0.24), with a hash (0.38 and later); labelled `git-repo-name` and `git-branch`
(0.24 and later, sanitized from 0.48 on, with `git-full-repo`) or not at all (0.15); with the branch as
`spec.source.git.ref` (up to 0.29, with bump_release) or the commit (0.30 and later, the branch only in the
`git-branch` label). Each is found here and adopted as it is, so no second BuildConfig, and no second trigger,
is ever made beside it; what adopting changes is described for the module's result.
"""

from __future__ import annotations

import json
import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.naming import (
    branch_label_values,
    buildconfig_name,
    git_branch_name,
    is_buildconfig_name,
    normalize_git_uri,
    osbs_client_names,
    repo_label_values,
)
from ansible_collections.osbs.flow.plugins.module_utils.resources import BUMP_RELEASE_ANNOTATION, OUR_ANNOTATIONS

REPO_LABEL = "git-repo-name"
BRANCH_LABEL = "git-branch"
_COMMIT = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")
# How sure a BuildConfig is for the branch: its ref or annotation names it, or only a shortened label does.
EXACT, LABEL_ONLY, NO_BRANCH = "exact", "label", "none"


def _metadata(buildconfig, field):
    return (buildconfig.get("metadata") or {}).get(field) or {}


def _git(buildconfig):
    return ((buildconfig.get("spec") or {}).get("source") or {}).get("git") or {}


def made_by_osbs_flow(buildconfig):
    """Whether osbs.flow wrote this BuildConfig before (it carries osbs.flow's annotations)."""
    return any(key in _metadata(buildconfig, "annotations") for key in OUR_ANNOTATIONS)


def _recorded_branch(buildconfig):
    """The branch the BuildConfig says it is for, and how surely: osbs.flow's bump-release annotation, else a
    ref that is no commit (osbs-client up to 0.29), else the `git-branch` label (0.30 and later put the commit in
    the ref), which may be shortened or sanitized."""
    try:
        branch = json.loads(_metadata(buildconfig, "annotations").get(BUMP_RELEASE_ANNOTATION) or "{}").get("git_branch")
    except (ValueError, AttributeError):
        branch = None
    if branch:
        return branch, EXACT
    ref = _git(buildconfig).get("ref")
    if ref and not _COMMIT.match(ref):
        return ref, EXACT
    label = _metadata(buildconfig, "labels").get(BRANCH_LABEL)
    return (label, LABEL_ONLY) if label else (None, NO_BRANCH)


def branch_match(buildconfig, git_branch):
    """EXACT or LABEL_ONLY when the BuildConfig is for the branch, NO_BRANCH when nothing says which branch it is
    for, None when it is for another branch."""
    branch = git_branch_name(git_branch)
    recorded, how = _recorded_branch(buildconfig)
    if how == NO_BRANCH:
        return NO_BRANCH
    if git_branch_name(recorded) == branch:
        return EXACT
    if how == LABEL_ONLY and recorded in branch_label_values(branch):
        return LABEL_ONLY
    return None


def same_repository(buildconfig, git_uri):
    uri = _git(buildconfig).get("uri")
    return bool(uri) and normalize_git_uri(uri) == normalize_git_uri(git_uri)


class Found:
    """The BuildConfig found, how it was found, and whether osbs.flow made it (else it is adopted)."""

    def __init__(self, buildconfig, how):
        self.buildconfig = buildconfig
        self.how = how
        self.adopted = not made_by_osbs_flow(buildconfig)


def _by_labels(client, namespace, git_uri, git_branch):
    found = {}
    for value in sorted(repo_label_values(git_uri)):
        for bc in client.list("BuildConfig", namespace, label_selector="%s=%s" % (REPO_LABEL, value))["items"]:
            match = branch_match(bc, git_branch) if same_repository(bc, git_uri) else None
            if match in (EXACT, LABEL_ONLY):
                found[bc["metadata"]["name"]] = (bc, match)
    # A label sanitized by osbs-client 0.48 (`release/2.0` and `release2.0` both `release2.0`) counts only when
    # nothing names the branch exactly.
    exact = {name: item for name, item in found.items() if item[1] == EXACT}
    return {name: bc for name, (bc, _match) in (exact or found).items()}


def find_existing_buildconfig(client, namespace, params):
    """The existing BuildConfig of (git_uri, git_branch) as a Found, or None.

    First by the `git-repo-name` label in each form osbs.flow and osbs-client wrote it, keeping those whose source
    is the same repository and whose branch (annotation, ref or `git-branch` label) is this one; then by name:
    the `name` option, or osbs.flow's name and then each osbs-client release's name, of the same repository.
    Two BuildConfigs found by labels are an error: which to keep is the user's decision.
    """
    git_uri, git_branch = params["git_uri"], params["git_branch"]
    matches = _by_labels(client, namespace, git_uri, git_branch)
    if params["name"] and params["name"] in matches:
        return Found(matches[params["name"]], "labels %s and its name" % _labels_text(matches[params["name"]]))
    if len(matches) > 1:
        raise OsbsFlowError(
            "BuildConfigs %s in namespace %s are all for %s at branch %s (labels %s): keep one (delete the others, "
            "or remove their git labels) or name the one to use with the name option"
            % (", ".join(sorted(matches)), namespace, mask_credentials(git_uri), git_branch_name(git_branch),
               "; ".join(_labels_text(bc) for _name, bc in sorted(matches.items())))
        )
    if matches:
        bc = next(iter(matches.values()))
        return Found(bc, "labels %s" % _labels_text(bc))
    if params["name"]:
        bc = client.get("BuildConfig", namespace, params["name"])
        return Found(bc, "name %s (the name option)" % params["name"]) if bc else None
    ours = buildconfig_name(git_uri, git_branch)
    bc = client.get("BuildConfig", namespace, ours)
    if bc is not None:
        return Found(bc, "name %s" % ours)
    legacy = {}
    for release, name in sorted(osbs_client_names(git_uri, git_branch).items(), reverse=True):
        if is_buildconfig_name(name):
            legacy.setdefault(name, []).insert(0, release)
    for name, releases in legacy.items():
        bc = client.get("BuildConfig", namespace, name)
        # A name another repository's BuildConfig has under osbs-client's shortened names is not this one's.
        if bc is not None and same_repository(bc, git_uri) and branch_match(bc, git_branch) is not None:
            return Found(bc, "name %s (the name osbs-client %s gave it)" % (name, " and ".join(releases)))
    return None


def _labels_text(buildconfig):
    labels = _metadata(buildconfig, "labels")
    return ",".join("%s=%s" % (key, labels[key]) for key in (REPO_LABEL, BRANCH_LABEL) if key in labels) or "(none)"


def base_image_triggers(existing):
    """The ImageStreamTags of the ImageChange triggers an adopted BuildConfig had for its base image.

    osbs-client rendered one trigger, the base image's, and replaced all triggers on every build, so on a
    BuildConfig osbs.flow never wrote each ImageChange trigger is the previous base image's: it is replaced by
    osbs.flow's, not kept beside it.
    """
    if not existing or made_by_osbs_flow(existing):
        return set()
    tags = set()
    for trigger in (existing.get("spec") or {}).get("triggers") or []:
        source = (trigger.get("imageChange") or {}).get("from") or {}
        if trigger.get("type") == "ImageChange" and source.get("kind") == "ImageStreamTag" and source.get("name"):
            tags.add(source["name"])
    return tags


_SHOWN = 100  # characters of a value shown in a change


def _shown(value):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = mask_credentials(text)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def describe_changes(before, after, path=""):
    """One line per changed field between two objects (server bookkeeping left out by the caller)."""
    lines = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            where = "%s.%s" % (path, key) if path else str(key)
            if key not in after:
                lines.append("%s removed (was %s)" % (where, _shown(before[key])))
            elif key not in before:
                lines.append("%s set to %s" % (where, _shown(after[key])))
            elif before[key] != after[key]:
                lines.extend(describe_changes(before[key], after[key], where))
        return lines
    return ["%s: %s -> %s" % (path, _shown(before), _shown(after))]


def adoption_result(found, before, after):
    """What the module's result says about a BuildConfig osbs.flow adopted: which, how found, what changed."""
    return {
        "name": found.buildconfig["metadata"]["name"],
        "found_by": found.how,
        "changes": describe_changes(before or {}, after or {}),
    }
