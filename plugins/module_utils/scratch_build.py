# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch builds: a Build of their own, made from the BuildConfig's spec, that touches nothing of the component.

As osbs-client's create_scratch_build did, the Build is created directly (POST builds), not instantiated from the
BuildConfig: so it takes no build number of it, leaves its lastVersion, triggers and imageLabels alone, is not
one of its builds (no `openshift.io/build-config.name` label: the next user build's reuse check and release
numbering never see it), and pushes to a tag of its own only, never to `latest`. OpenShift runs a Build created
this way as any other (openshift-apiserver pkg/build/apiserver/registry/build: a plain create; the build
controller needs no BuildConfig). Its base is the image the BuildConfig's ImageStreamTag resolves to now, given
by digest (a Build's ImageStreamTag `from` is resolved by instantiate, which a created Build does not go through).
Its release is `scratch.<timestamp>`, from no one's numbers (bump_release gave scratch builds their own too).
"""

from __future__ import annotations

import copy
import datetime
import json
import uuid

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.identity import (
    IDENTITY_LABELS,
    SCRATCH_RELEASE_PREFIX,
    identity_labels,
    output_repository,
)
from ansible_collections.osbs.flow.plugins.module_utils.image_tags import unique_tag
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    AUTOREBUILD_LABEL,
    BUMP_RELEASE_ANNOTATION,
    build_config_label_value,
    recorded_commit,
)

SCRATCH_LABEL = "osbs.flow/scratch"
SCRATCH_OF_ANNOTATION = "osbs.flow/scratch-of"
UNIQUE_TAG_ANNOTATION = "osbs.flow/unique-tag"
# What a Build takes from its BuildConfig's spec (OpenShift's CommonSpec), besides what is set here.
COPIED_SPEC_FIELDS = ("serviceAccount", "source", "strategy", "output", "resources", "postCommit",
                      "completionDeadlineSeconds", "nodeSelector", "mountTrustedCA")
NAME_MAX_LENGTH = 63


def _branch(buildconfig):
    annotations = (buildconfig.get("metadata") or {}).get("annotations") or {}
    try:
        branch = json.loads(annotations.get(BUMP_RELEASE_ANNOTATION) or "{}").get("git_branch")
    except (ValueError, AttributeError):
        branch = None
    return branch or ((buildconfig.get("metadata") or {}).get("labels") or {}).get("git-branch") or "scratch"


def scratch_build(buildconfig, commit, base_pull_spec, dockerfile_labels, api_url, architecture=None, now=None):
    """The Build object of a scratch build of `commit` from `base_pull_spec` (a DockerImage pull spec or None)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
    bc_name = buildconfig["metadata"]["name"]
    suffix = "-scratch-" + stamp
    name = bc_name[:NAME_MAX_LENGTH - len(suffix)].rstrip("-.") + suffix
    repository = output_repository(buildconfig)
    to = ((buildconfig.get("spec") or {}).get("output") or {}).get("to") or {}
    if not repository:
        raise OsbsFlowError("BuildConfig %s/%s does not push to a DockerImage (%s %s): a scratch build needs one"
                            % (buildconfig["metadata"]["namespace"], bc_name, to.get("kind"), to.get("name")))
    host = to["name"].split("/", 1)[0]
    tag = unique_tag(_branch(buildconfig), now.strftime("%Y-%m-%dT%H:%M:%SZ"), uuid.uuid4().hex)

    spec = {key: copy.deepcopy(value) for key, value in (buildconfig.get("spec") or {}).items() if key in COPIED_SPEC_FIELDS}
    git = spec.setdefault("source", {}).setdefault("git", {})
    git["ref"] = commit
    spec["revision"] = {"type": "Git", "git": {"commit": commit}}
    strategy = spec.setdefault("strategy", {"type": "Docker"}).setdefault("dockerStrategy", {})
    if base_pull_spec:
        strategy["from"] = {"kind": "DockerImage", "name": base_pull_spec}
    output = spec.setdefault("output", {})
    output["to"] = {"kind": "DockerImage", "name": "%s/%s:%s" % (host, repository, tag)}
    identity = identity_labels(buildconfig, dockerfile_labels, commit, SCRATCH_RELEASE_PREFIX + "." + stamp.replace("-", "."),
                               api_url, architecture, now)
    kept = [item for item in output.get("imageLabels") or [] if item.get("name") not in IDENTITY_LABELS]
    output["imageLabels"] = kept + [{"name": key, "value": identity[key]} for key in sorted(identity)]
    spec["triggeredBy"] = [{"message": "Scratch build by osbs.flow of commit %s" % commit}]
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {
            "name": name,
            "namespace": buildconfig["metadata"]["namespace"],
            "labels": {SCRATCH_LABEL: "true", AUTOREBUILD_LABEL: "false",
                       "osbs.flow/scratch-of": build_config_label_value(bc_name)},
            "annotations": {SCRATCH_OF_ANNOTATION: bc_name, UNIQUE_TAG_ANNOTATION: tag},
        },
        "spec": spec,
    }


def start_scratch(runner, dockerfile_labels):
    """Create the scratch Build of the runner's BuildConfig (at its git_commit, else the recorded one); return it."""
    from ansible_collections.osbs.flow.plugins.module_utils.build import WouldStart

    bc = runner.buildconfig()
    commit = runner.git_commit or recorded_commit(bc)
    if not commit:
        raise OsbsFlowError("BuildConfig %s/%s records no commit: give git_commit for the scratch build" % (runner.namespace, runner.name))
    _digest, base_pull_spec, base_image = runner.base_image(bc)
    strategy_from = ((bc["spec"].get("strategy") or {}).get("dockerStrategy") or {}).get("from") or {}
    if strategy_from.get("kind") == "ImageStreamTag" and not base_pull_spec:
        if runner.check_mode:
            raise WouldStart("once the base image is imported")
        raise OsbsFlowError("BuildConfig %s/%s builds from the ImageStreamTag %s, which has no image yet: import the base "
                            "image first" % (runner.namespace, runner.name, strategy_from.get("name")))
    if strategy_from.get("kind") == "DockerImage":
        base_pull_spec = strategy_from.get("name")
    if runner.check_mode:
        raise WouldStart()
    labels = runner.releases.dockerfile_labels_for(bc, commit)
    architecture = ((base_image or {}).get("dockerImageMetadata") or {}).get("Architecture")
    body = scratch_build(bc, commit, base_pull_spec, labels, runner.client.host, architecture)
    return runner.client.create("Build", runner.namespace, body)
