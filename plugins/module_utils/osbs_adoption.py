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
    OSBS_CLIENT_HASH_LENGTH,
    is_buildconfig_name,
    osbs_client_label_value,
    osbs_client_names,
    repo_label_values,
    repository_identity,
)
from ansible_collections.osbs.flow.plugins.module_utils.resources import BUMP_RELEASE_ANNOTATION, OUR_ANNOTATIONS

REPO_LABEL = "git-repo-name"
BRANCH_LABEL = "git-branch"
FULL_REPO_LABEL = "git-full-repo"  # osbs-client 0.48 and later, which sanitised the labels
_COMMIT = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?\Z")
# How sure a BuildConfig is for the branch: its ref or annotation names it, or only a shortened label does.
EXACT, LABEL_ONLY, NO_BRANCH = "exact", "label", "none"
SAME, MAYBE = "same", "maybe"  # how surely a BuildConfig's source is this repository


def _metadata(buildconfig, field):
    return (buildconfig.get("metadata") or {}).get(field) or {}


def _git(buildconfig):
    return ((buildconfig.get("spec") or {}).get("source") or {}).get("git") or {}


def made_by_osbs_flow(buildconfig):
    """Whether osbs.flow wrote this BuildConfig before (it carries osbs.flow's annotations)."""
    return any(key in _metadata(buildconfig, "annotations") for key in OUR_ANNOTATIONS)


def _our_branch(buildconfig):
    """The branch osbs.flow recorded on a BuildConfig it wrote (its bump-release annotation), or None."""
    try:
        return json.loads(_metadata(buildconfig, "annotations").get(BUMP_RELEASE_ANNOTATION) or "{}").get("git_branch")
    except (ValueError, AttributeError):
        return None


def branch_match(buildconfig, git_branch):
    """EXACT when the BuildConfig says it is for the branch, LABEL_ONLY when only a label that other branches may
    share says so (its name must confirm it), NO_BRANCH when nothing says which branch it is for (its name must),
    None when it is for another branch.

    osbs.flow's own: the bump-release annotation. osbs-client's: the `git-branch` label whenever there is one
    (0.24 and later), whatever the ref, because from 0.30 on the ref is whatever the caller passed (a commit,
    `master`, a short commit, `HEAD`); only osbs-client's own label forms count: the branch as it is (0.24 to
    0.47), or with every character but [-a-z0-9.] dropped (0.48 and later, which added `git-full-repo`), which
    other branches share (`release/2.0` and `release2.0` are both `release2.0`). Without a label (0.15) the ref
    is the branch.
    """
    branch = git_branch_name(git_branch)
    if made_by_osbs_flow(buildconfig):
        recorded = _our_branch(buildconfig)
        if recorded:
            return EXACT if git_branch_name(recorded) == branch else None
        label = _metadata(buildconfig, "labels").get(BRANCH_LABEL)
        return LABEL_ONLY if label in branch_label_values(branch) else None
    labels = _metadata(buildconfig, "labels")
    if BRANCH_LABEL in labels:
        label = labels[BRANCH_LABEL]
        if FULL_REPO_LABEL not in labels:
            return EXACT if label == branch else None
        return LABEL_ONLY if label and label == osbs_client_label_value(branch) else None
    ref = _git(buildconfig).get("ref")
    if not ref or _COMMIT.match(ref):
        return NO_BRANCH
    return EXACT if git_branch_name(ref) == branch else None


def same_repository(buildconfig, git_uri):
    """SAME, MAYBE (the same host and path under another port, which may be another server) or None."""
    uri = _git(buildconfig).get("uri")
    if not uri:
        return None
    theirs, ours = repository_identity(uri), repository_identity(git_uri)
    if theirs == ours:
        return SAME
    return MAYBE if (theirs[0], theirs[2]) == (ours[0], ours[2]) else None


def _osbs_client_names_of(buildconfig, git_uri, branch):
    """The names osbs-client 0.38 and later gave the BuildConfig of (repository, branch): they hash the branch as
    it is, so they tell apart branches whose labels were sanitised alike."""
    names = set()
    for uri in (git_uri, _git(buildconfig).get("uri") or git_uri):
        found = osbs_client_names(uri, branch)
        names.update((found["0.38"], found["0.48"]))
    return names


_HASHED_NAME = re.compile(r"^(?P<stem>.*)-[0-9a-f]{%d}$" % OSBS_CLIENT_HASH_LENGTH)


def _another_branchs_name(name, names):
    """Whether `name` is osbs-client's hashed name of another branch: the stem this branch's name has, another
    hash (of the branch as it was, which sanitising made look like this one)."""
    theirs = _HASHED_NAME.match(name)
    stems = {ours.group("stem") for ours in map(_HASHED_NAME.match, names) if ours}
    return bool(theirs) and name not in names and theirs.group("stem") in stems


def adopted_commit(found):
    """The commit an adopted osbs-client BuildConfig records in its ref (0.30 and later), else None: with no
    git_commit given it stays the commit to build (the one commit rule), not the branch head."""
    if not found or not found.adopted:
        return None
    ref = _git(found.buildconfig).get("ref")
    return ref if ref and _COMMIT.match(ref) else None


class Found:
    """The BuildConfig found, how it was found, and whether osbs.flow made it (else it is adopted)."""

    def __init__(self, buildconfig, how):
        self.buildconfig = buildconfig
        self.how = how
        self.adopted = not made_by_osbs_flow(buildconfig)


def _judge(buildconfig, git_uri, git_branch, by_name):
    """(True, how) when the BuildConfig is this repository and branch's; (False, why) when it may be but cannot be
    told (the caller refuses to go on); None when it is another repository's or branch's."""
    name = buildconfig["metadata"]["name"]
    repository = same_repository(buildconfig, git_uri)
    if repository is None:
        return None
    match = branch_match(buildconfig, git_branch)
    branch = git_branch_name(git_branch)
    if match is None:
        labels = _metadata(buildconfig, "labels")
        ref = _git(buildconfig).get("ref")
        if by_name and BRANCH_LABEL not in labels and ref and not made_by_osbs_flow(buildconfig):
            return False, "it has the name osbs-client gave branch %s's BuildConfig, but its ref %s is not that branch" % (branch, ref)
        return None
    if match == LABEL_ONLY and name not in _osbs_client_names_of(buildconfig, git_uri, branch):
        label = _metadata(buildconfig, "labels").get(BRANCH_LABEL)
        if _another_branchs_name(name, _osbs_client_names_of(buildconfig, git_uri, branch)):
            return None
        return False, ("its label %s=%s is what osbs-client 0.48 and later wrote for branch %s and for every branch "
                       "that reads the same without the characters it dropped, and its name is not the one "
                       "osbs-client gave branch %s's" % (BRANCH_LABEL, label, branch, branch))
    if repository == MAYBE:
        return False, "its source %s is this repository's host and path under another port" % mask_credentials(_git(buildconfig)["uri"])
    if by_name and match == NO_BRANCH:
        return True, None
    return True, "labels %s" % _labels_text(buildconfig) if not by_name else None


def _by_labels(client, namespace, git_uri, git_branch):
    taken, unsure = {}, {}
    for value in sorted(repo_label_values(git_uri)):
        for bc in client.list("BuildConfig", namespace, label_selector="%s=%s" % (REPO_LABEL, value))["items"]:
            verdict = _judge(bc, git_uri, git_branch, by_name=False)
            if verdict:
                (taken if verdict[0] else unsure)[bc["metadata"]["name"]] = (bc, verdict[1])
    return taken, unsure


def find_existing_buildconfig(client, namespace, params):
    """The existing BuildConfig of (git_uri, git_branch) as a Found, or None.

    The `name` option, when given, decides alone. Else first by the `git-repo-name` label in each form osbs.flow
    and osbs-client wrote it, keeping those of the same repository (repository_identity: whatever the URI's
    spelling) whose branch (branch_match) is this one; then by name: osbs.flow's name and then each osbs-client
    release's name, of the same repository. Two BuildConfigs found are an error: which to keep is the user's
    decision. So is one that may be this branch's but cannot be told apart from another's: it is named with what
    to do, before anything is written, rather than a second BuildConfig (and a second trigger) made beside it.
    """
    git_uri, git_branch = params["git_uri"], params["git_branch"]
    if params["name"]:
        bc = client.get("BuildConfig", namespace, params["name"])
        return Found(bc, "name %s (the name option)" % params["name"]) if bc else None
    taken, unsure = _by_labels(client, namespace, git_uri, git_branch)
    if len(taken) > 1:
        raise OsbsFlowError(
            "BuildConfigs %s in namespace %s are all for %s at branch %s (labels %s): keep one (delete the others, "
            "or remove their git labels) or name the one to use with the name option"
            % (", ".join(sorted(taken)), namespace, mask_credentials(git_uri), git_branch_name(git_branch),
               "; ".join(_labels_text(bc) for _name, (bc, _how) in sorted(taken.items())))
        )
    if taken:
        bc, how = next(iter(taken.values()))
        return Found(bc, how)
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
        verdict = _judge(bc, git_uri, git_branch, by_name=True) if bc is not None else None
        if verdict and verdict[0]:
            return Found(bc, "name %s (the name osbs-client %s gave it)" % (name, " and ".join(releases)))
        if verdict:
            unsure.setdefault(name, (bc, verdict[1]))
    if unsure:
        raise OsbsFlowError(
            "%s in namespace %s may be the BuildConfig of %s at branch %s, which osbs.flow cannot tell: %s. Nothing was "
            "written. If it is this branch's, adopt it with name=%s; if it is not, give the name option a new "
            "BuildConfig name to make this branch's beside it, or delete it"
            % ("BuildConfig " + ", ".join(sorted(unsure)) if len(unsure) == 1 else "BuildConfigs " + ", ".join(sorted(unsure)),
               namespace, mask_credentials(git_uri), git_branch_name(git_branch),
               "; ".join("%s: %s" % (name, why) for name, (_bc, why) in sorted(unsure.items())),
               " or name=".join(sorted(unsure)))
        )
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


_SHOWN = 100  # characters of one field's value shown in a change; the field itself is always named in full


def _shown(value):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = mask_credentials(text)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "... (%d characters)" % len(text)


def _item_key(item):
    """How a list item is named in a change: an env variable or volume by its name, a secret by the secret's, a
    trigger by its type and what it watches; else None (then by position)."""
    if not isinstance(item, dict):
        return None
    source, change = item.get("secretSource"), item.get("imageChange")
    if isinstance(item.get("name"), str):
        return item["name"]
    if isinstance(source, dict) and isinstance(source.get("name"), str):
        return source["name"]
    if not isinstance(item.get("type"), str):
        return None
    watched = ((change or {}).get("from") or {}).get("name") if isinstance(change, dict) else None
    return "%s %s" % (item["type"], watched) if isinstance(watched, str) else item["type"]


def _keyed(items):
    """{name: item} of a list whose items all have distinct names, else {position: item}."""
    keys = [_item_key(item) for item in items]
    if None in keys or len(set(keys)) != len(keys):
        keys = [str(index) for index in range(len(items))]
    return dict(zip(keys, items))


def _leaves(path, value, verb):
    """One line per field of a value that was removed or set: every dropped field named, however many."""
    if isinstance(value, dict) and value:
        return [line for key in sorted(value, key=str) for line in _leaves("%s.%s" % (path, key), value[key], verb)]
    if isinstance(value, list) and value:
        keyed = _keyed(value)
        if all(_item_key(item) == key for key, item in keyed.items()):  # items named: one line each
            return [_leaf("%s[%s]" % (path, key), item, verb) for key, item in keyed.items()]
        return [line for key, item in keyed.items() for line in _leaves("%s[%s]" % (path, key), item, verb)]
    return [_leaf(path, value, verb)]


def _leaf(path, value, verb):
    return "%s removed (was %s)" % (path, _shown(value)) if verb == "removed" else "%s set to %s" % (path, _shown(value))


def describe_changes(before, after, path=""):
    """One line per changed field between two objects (server bookkeeping left out by the caller); list items are
    matched by their names (_item_key), so a long list does not hide which item changed."""
    if isinstance(before, list) and isinstance(after, list):
        before, after = _keyed(before), _keyed(after)
        if any(key.isdigit() for key in list(before) + list(after)):  # items without names: the list as a whole
            return ["%s: %s -> %s" % (path, _shown(list(before.values())), _shown(list(after.values())))]
        return _changed_keys(before, after, lambda key: "%s[%s]" % (path, key), lambda where, value, verb: [_leaf(where, value, verb)])
    if isinstance(before, dict) and isinstance(after, dict):
        return _changed_keys(before, after, lambda key: "%s.%s" % (path, key) if path else str(key), _leaves)
    return ["%s: %s -> %s" % (path, _shown(before), _shown(after))]


def _changed_keys(before, after, where, gone_or_new):
    lines = []
    for key in sorted(set(before) | set(after), key=str):
        if key not in after:
            lines.extend(gone_or_new(where(key), before[key], "removed"))
        elif key not in before:
            lines.extend(gone_or_new(where(key), after[key], "set"))
        elif before[key] != after[key]:
            lines.extend(describe_changes(before[key], after[key], where(key)))
    return lines


def _active_image_triggers(buildconfig):
    return [t for t in ((buildconfig or {}).get("spec") or {}).get("triggers") or []
            if t.get("type") == "ImageChange" and not (t.get("imageChange") or {}).get("paused")]


def adoption_warnings(before, after):
    """What a person adopting the BuildConfig must know beyond the changes: autorebuilds turned on where
    osbs-client had them off, and osbs-client's node placement kept."""
    name = (before.get("metadata") or {}).get("name")
    warnings = []
    if not _active_image_triggers(before) and _active_image_triggers(after):
        warnings.append(
            "autorebuilds turned on for BuildConfig %s: osbs-client left it without an ImageChange trigger (0.41 and "
            "later removed the triggers when the repository had no .osbs-repo-config or disabled autorebuilds), and "
            "osbs.flow reads a missing .osbs-repo-config as enabled, so a new %s now rebuilds it; to keep them off, "
            "commit a .osbs-repo-config with '[autorebuild]' and 'enabled = false' to the repository"
            % (name, ", ".join(sorted(t["imageChange"]["from"]["name"] for t in _active_image_triggers(after)))))
    if ((before.get("spec") or {}).get("nodeSelector")):
        warnings.append("BuildConfig %s keeps osbs-client's spec.nodeSelector %s: its docker builds run only on those "
                        "nodes (remove it if they were the orchestrator's)" % (name, _shown(before["spec"]["nodeSelector"])))
    return warnings


def adoption_result(found, before, after):
    """What the module's result says about a BuildConfig osbs.flow adopted: which, how found, what changed, and
    what to know (warnings, which the module also gives as its own)."""
    return {
        "name": found.buildconfig["metadata"]["name"],
        "found_by": found.how,
        "changes": describe_changes(before or {}, after or {}),
        "warnings": adoption_warnings(before or {}, after or {}),
    }
