# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 2 of the flow: the BuildConfig of (git repository, branch), as osbs-client kept it.

Where the atomic-reactor plugin configurations live: OSBS passed them in the
build's plugin configuration; a docker-strategy BuildConfig has no such place,
so osbs.flow keeps them as annotations on the BuildConfig, readable with
`oc get bc NAME -o yaml` (resources.py lists them and reads them back).
"""

from __future__ import annotations

import copy
import json
import posixpath

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig_guards import check_push_secret, refuse_or_wait_for_builds
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import check_commit, mask_credentials
from ansible_collections.osbs.flow.plugins.module_utils.identity import (
    DOCKERFILE_LABELS_ANNOTATION,
    check_version_release,
    dockerfile_labels_annotation,
)
from ansible_collections.osbs.flow.plugins.module_utils.images import (
    check_repository,
    check_tag,
    imagestreamimport_body,
    imagestreamtag_for_image,
    import_outcome,
    is_trackable,
    spec_tag_import_body,
)
from ansible_collections.osbs.flow.plugins.module_utils.naming import (
    buildconfig_name,
    check_git_uri,
    git_branch_name,
    git_labels,
)
from ansible_collections.osbs.flow.plugins.module_utils.openshift import object_diff, retry_on_conflict
from ansible_collections.osbs.flow.plugins.module_utils.osbs_adoption import (
    adopted_commit,
    adoption_result,
    base_image_triggers,
    find_existing_buildconfig,
)
from ansible_collections.osbs.flow.plugins.module_utils.registry_uri import parse_registry_uri
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    AUTOREBUILD_LABEL,
    BASE_IMAGE_ANNOTATION,
    BUMP_RELEASE_ANNOTATION,
    OUR_ANNOTATIONS,
    STOP_AUTOREBUILD_ANNOTATION,
    base_imagestreamtag,
    imagestreamtag_image,
    recorded_commit,
)


def output_image(registry_uri, image, tag):
    """`host[:port]/name:tag`, the pull spec the build pushes to; a name or tag the registry would refuse is
    refused here, before any object is written."""
    registry = parse_registry_uri(registry_uri)
    name = image.strip()
    if ":" in name.rsplit("/", 1)[-1] or "@" in name:
        raise OsbsFlowError("image %r must not carry a tag or digest: give the tag in image_tag" % image)
    check_repository(name, "image", registry.host,
                     fix="give the repository path the build pushes to (the Dockerfile's `name` label, in the flow)")
    check_tag(tag, "image_tag")
    return "%s/%s:%s" % (registry.host, name, tag)


def _clean_path(value):
    """Go's path.Clean, as OpenShift's validation applies it (posixpath.normpath keeps a leading `//`)."""
    cleaned = posixpath.normpath(value)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _stored_path(value, option, refused):
    """The path as OpenShift stores it: cleaned, `.` unset (None); one leaving the repository is refused here,
    where the server would answer 422 (OAS validation.go validateRelativePath and validateSource)."""
    if not value:
        return None
    cleaned = _clean_path(value)
    if refused(cleaned):
        raise OsbsFlowError("%s %r leaves the repository: give a path inside the git repository (relative, without ..)" % (option, value))
    return None if cleaned == "." else cleaned


def desired_spec(params, recorded_git_ref=None):
    """The parts of the BuildConfig that are ours, from the module's parameters.

    Without git_commit, the commit the BuildConfig already records is kept. The one commit rule: the
    BuildConfig's `spec.source.git.ref` is that commit, not the branch (as osbs-client 0.30 and later wrote
    it), so a build the cluster's ImageChange trigger starts builds the commit of the last user build, as the
    wave's builds do; the branch is in the `git-branch` label and the bump-release annotation. The
    Dockerfile's labels at that commit (`dockerfile_labels`) are recorded for the identity labels
    (identity.py); a new commit without them drops the old commit's.
    """
    git_uri = params["git_uri"]
    check_git_uri(git_uri)
    branch = git_branch_name(params["git_branch"])
    base_image = params["base_image"]
    strategy = {}
    dockerfile_path = _stored_path(params["dockerfile_path"], "dockerfile_path",
                                   lambda cleaned: cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"))
    if dockerfile_path:
        strategy["dockerfilePath"] = dockerfile_path
    trigger_tag = None
    if base_image and is_trackable(base_image):
        trigger_tag = imagestreamtag_for_image(base_image)
        strategy["from"] = {"kind": "ImageStreamTag", "name": trigger_tag}
    elif base_image and base_image != "scratch":
        strategy["from"] = {"kind": "DockerImage", "name": base_image}
    if params["build_args"]:
        strategy["buildArgs"] = [{"name": k, "value": str(v)} for k, v in sorted(params["build_args"].items())]
    if params["no_cache"]:
        strategy["noCache"] = True
    if params.get("image_optimization_policy"):
        strategy["imageOptimizationPolicy"] = params["image_optimization_policy"]

    # Only a full commit name: the builder hands the ref to `git fetch <uri> <ref>` with no `--` (library-go
    # repository.go Fetch), and a branch name there would build the branch head, not the commit recorded.
    given_commit = check_commit(params["git_commit"]) if params["git_commit"] else None
    commit = given_commit or recorded_git_ref
    source = {"type": "Git", "git": {"uri": git_uri, "ref": commit or branch}}
    context_dir = _stored_path(params["context_dir"], "context_dir", lambda cleaned: cleaned.startswith(".."))
    if context_dir:
        source["contextDir"] = context_dir
    if params["git_source_secret"]:
        source["sourceSecret"] = {"name": params["git_source_secret"]}
    output = {"to": {"kind": "DockerImage", "name": output_image(params["registry_uri"], params["image"], params["image_tag"])}}
    if params["registry_secret"]:
        output["pushSecret"] = {"name": params["registry_secret"]}
    annotations = {
        BUMP_RELEASE_ANNOTATION: json.dumps({"git_ref": commit, "git_branch": branch}, sort_keys=True),
        STOP_AUTOREBUILD_ANNOTATION: json.dumps({"config_file": params["repo_config_file"]}, sort_keys=True),
    }
    if base_image:
        annotations[BASE_IMAGE_ANNOTATION] = base_image
    if params.get("dockerfile_labels") is not None:
        check_version_release(params["dockerfile_labels"], "at commit %s" % commit)
        annotations[DOCKERFILE_LABELS_ANNOTATION] = dockerfile_labels_annotation(params["dockerfile_labels"])
    elif given_commit and given_commit != recorded_git_ref:
        annotations[DOCKERFILE_LABELS_ANNOTATION] = None  # recorded for another commit: removed
    labels = dict(params["labels"] or {})
    labels.update(git_labels(git_uri, branch))
    return {
        "labels": labels,
        "annotations": annotations,
        "trigger_tag": trigger_tag,
        "trigger_paused": not params["autorebuild_enabled"],
        "spec": {
            "runPolicy": params["run_policy"],
            "source": source,
            "strategy": {"type": "Docker", "dockerStrategy": strategy},
            "output": output,
        },
    }


def _is_our_trigger(trigger):
    return trigger.get("type") == "ImageChange"


def _our_trigger_tags(existing, desired):
    """ImageStreamTags of the ImageChange triggers osbs.flow owns: the base image's, now and before."""
    tags = {desired["trigger_tag"]} if desired["trigger_tag"] else set()
    previous = ((existing or {}).get("metadata", {}).get("annotations") or {}).get(BASE_IMAGE_ANNOTATION)
    if previous and is_trackable(previous):
        tags.add(imagestreamtag_for_image(previous))
    return tags | base_image_triggers(existing)


def merge_buildconfig(existing, name, namespace, desired, seen_image=None):
    """The BuildConfig to write: ours set exactly, everything else on `existing` kept.

    Other labels, annotations and triggers stay. Ours is the ImageChange
    trigger of the base image (and of the previous base image, which goes):
    kept as it is when present, so its bookkeeping survives. A new
    trigger records `seen_image`, the image its tag resolves to now, as already
    seen: the user build builds from it, so the trigger must not start another
    (osbs-client removed the triggers around its first build for the same reason).
    """
    new = copy.deepcopy(existing) if existing else {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }
    metadata = new["metadata"]
    labels = metadata.setdefault("labels", {}) or {}
    metadata["labels"] = labels
    labels.update(desired["labels"])
    annotations = metadata.get("annotations") or {}
    metadata["annotations"] = annotations
    for key in OUR_ANNOTATIONS:
        annotations.pop(key, None)
    for key, value in desired["annotations"].items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value

    spec = new["spec"]
    for key, value in desired["spec"].items():
        if key == "strategy":
            old_strategy = (spec.get("strategy") or {}).get("dockerStrategy") or {}
            kept = {k: v for k, v in old_strategy.items() if k in ("env", "forcePull", "pullSecret", "imageOptimizationPolicy", "volumes")}
            kept.update(value["dockerStrategy"])
            spec["strategy"] = {"type": "Docker", "dockerStrategy": kept}
        elif key == "source":
            old_source = spec.get("source") or {}
            kept = {k: v for k, v in old_source.items() if k in ("sourceSecret", "secrets", "configMaps")}
            kept.update(value)
            # The git proxies someone set (behind a corporate proxy the clone needs them) are not ours: kept.
            proxies = {k: v for k, v in (old_source.get("git") or {}).items() if k in ("httpProxy", "httpsProxy", "noProxy")}
            kept["git"] = dict(proxies, **value["git"])
            spec["source"] = kept
        elif key == "output":
            kept = {k: v for k, v in (spec.get("output") or {}).items() if k == "imageLabels"}
            kept.update(value)
            spec["output"] = kept
        else:
            spec[key] = value

    wanted = {"kind": "ImageStreamTag", "name": desired["trigger_tag"]} if desired["trigger_tag"] else None
    ours = _our_trigger_tags(existing, desired)
    watched_base = _strategy_from(existing)
    triggers, placed = [], False
    for trigger in spec.get("triggers") or []:
        if not _is_our_trigger(trigger):
            triggers.append(trigger)
        elif _trigger_from(trigger):
            if _trigger_from(trigger).get("name") not in ours:
                triggers.append(trigger)
            elif wanted and not placed and _trigger_from(trigger) == wanted:
                triggers.append(_with_pause(copy.deepcopy(trigger), desired["trigger_paused"]))
                placed = True
        # A trigger without `from` (`oc new-build` makes one) watches the strategy's base image, so it is ours too:
        # kept when it watched the wanted tag already, else it would watch the new base twice (a 422 on a cluster).
        elif wanted and not placed and watched_base == wanted:
            triggers.append(_with_pause(copy.deepcopy(trigger), desired["trigger_paused"]))
            placed = True
        # any other trigger of ours watched the previous base image: it goes
    if wanted and not placed:
        trigger = {"type": "ImageChange", "imageChange": {"from": wanted}}
        if seen_image:
            trigger["imageChange"]["lastTriggeredImageID"] = seen_image
        triggers.append(_with_pause(trigger, desired["trigger_paused"]))
    spec["triggers"] = triggers
    return new


def _with_pause(trigger, paused):
    """A repository that disables autorebuilds gets a paused trigger, so the cluster never
    starts what stop_autorebuild_if_disabled would have stopped."""
    if paused:
        trigger["imageChange"]["paused"] = True
    else:
        trigger["imageChange"].pop("paused", None)
    return trigger


def _strategy_from(buildconfig):
    """The ImageStreamTag the BuildConfig's strategy builds from (namespace left out), or None."""
    source = dict((((buildconfig or {}).get("spec") or {}).get("strategy") or {}).get("dockerStrategy", {}).get("from") or {})
    source.pop("namespace", None)
    return source if source.get("kind") == "ImageStreamTag" else None


def _trigger_from(trigger):
    source = dict((trigger.get("imageChange") or {}).get("from") or {})
    source.pop("namespace", None)
    return source


def ensure_base_imagestream(module, namespace, base_image, trigger_tag, insecure, scheduled=False):
    """Make the ImageStreamTag the trigger watches resolve, importing the base image when it is missing.

    The import is synchronous (an ImageStreamImport), so the new trigger can be
    marked as already seeing the current image and fires only for a newer one.
    Returns the name of the ImageStream imported into (or made scheduled), or None; a base image
    that cannot be imported is an OsbsFlowError with the registry's reason.
    `scheduled` also makes an existing tag that imports an image by tag scheduled (schedule_base_tag).
    """
    client = module.client
    stream_name, tag = trigger_tag.split(":", 1)
    stream = client.get("ImageStream", namespace, stream_name)
    if stream is not None:
        known = {t.get("name") for t in (stream.get("spec") or {}).get("tags") or []}
        known |= {t.get("tag") for t in (stream.get("status") or {}).get("tags") or []}
        if tag in known:
            return stream_name if scheduled and schedule_base_tag(module, namespace, stream, tag) else None
    if module.check_mode:
        return stream_name
    # The base image must be importable: without it no build of this BuildConfig can start.
    import_outcome(
        client.create("ImageStreamImport", namespace,
                      imagestreamimport_body(namespace, stream_name, tag, base_image, insecure, True, scheduled=scheduled)),
        "base image %s (for ImageStreamTag %s/%s; set base_image_insecure for an insecure registry)" % (base_image, namespace, trigger_tag),
    )
    return stream_name


def schedule_base_tag(module, namespace, stream, tag):
    """Make an existing tag that imports an image by tag scheduled, with an import of it; whether it was not already.

    The server writes an import's importPolicy to the spec tag, as `oc tag --scheduled` relies on; the import also
    brings in a newer image when the registry has one, as the first scheduled import would.
    """
    spec_tag = next((t for t in (stream.get("spec") or {}).get("tags") or [] if t.get("name") == tag), None)
    source = (spec_tag or {}).get("from") or {}
    if (source.get("kind") != "DockerImage" or spec_tag.get("reference") or "@" in (source.get("name") or "")
            or (spec_tag.get("importPolicy") or {}).get("scheduled")):
        return False  # a tag by digest never changes; another stream's tag is not an import
    if not module.check_mode:
        stream_name = stream["metadata"]["name"]
        import_outcome(
            module.client.create("ImageStreamImport", namespace, spec_tag_import_body(namespace, stream_name, spec_tag, True, True)),
            "base image %s (for ImageStreamTag %s/%s:%s)" % (source["name"], namespace, stream_name, tag),
        )
    return True


def current_pull_spec(client, namespace, trigger_tag):
    """The pull spec by digest the ImageStreamTag resolves to now, or None."""
    return (imagestreamtag_image(client, namespace, trigger_tag) or {}).get("dockerImageReference")


def ensure_buildconfig(module):
    """Make the BuildConfig match the parameters; return the module result."""
    params = module.params
    client = module.client
    namespace = params["namespace"]
    name = params["name"] or buildconfig_name(params["git_uri"], params["git_branch"])
    result = {"changed": False}

    found = find_existing_buildconfig(client, namespace, params)
    existing = found.buildconfig if found else None
    if params["state"] == "existing":
        return existing_buildconfig(module, existing, result)
    if params["state"] == "absent":
        if existing is None:
            return dict(result, buildconfig=None)
        refuse_or_wait_for_builds(module, existing["metadata"]["name"])
        if not module.check_mode:
            client.request("DELETE", client.path("BuildConfig", namespace, existing["metadata"]["name"]))
        if module._diff:
            result["diff"] = {"before": existing, "after": {}}
        return dict(result, changed=True, buildconfig=None)

    if params["registry_secret"]:
        check_push_secret(module, namespace, params["registry_secret"])
    if existing is not None:
        name = existing["metadata"]["name"]
    desired = desired_spec(params, (recorded_commit(existing) if existing else None) or adopted_commit(found))
    if desired["trigger_tag"] and params["create_base_imagestream"]:
        created = ensure_base_imagestream(module, namespace, params["base_image"], desired["trigger_tag"], params["base_image_insecure"],
                                          params["base_image_scheduled_import"])
        if created:
            result["changed"] = True
            result["base_imagestream_created"] = created
    if not desired["trigger_tag"] and params["base_image"] and params["base_image"] != "scratch":
        module.warn(
            "base image %s is pinned by digest: BuildConfig %s gets no ImageChange trigger, so it will "
            "not be rebuilt when the base image changes" % (params["base_image"], name)
        )

    seen_image = current_pull_spec(client, namespace, desired["trigger_tag"]) if desired["trigger_tag"] else None

    def write():
        current = client.get("BuildConfig", namespace, name)
        new = merge_buildconfig(current, name, namespace, desired, seen_image)
        if current is None:
            new["metadata"]["labels"][AUTOREBUILD_LABEL] = "false"
            if not module.check_mode:
                new = client.create("BuildConfig", namespace, new)
            return None, new
        if new == current:
            return current, current
        # A changed BuildConfig is about to get a user build: mark it as not an autorebuild.
        new["metadata"]["labels"][AUTOREBUILD_LABEL] = "false"
        refuse_or_wait_for_builds(module, name)
        if not module.check_mode:
            new = client.replace("BuildConfig", namespace, new)
        return current, new

    before, after = retry_on_conflict(write)
    if before != after:
        result["changed"] = True
        if module._diff:
            result["diff"] = object_diff(_comparable(before), _comparable(after))
        if found and found.adopted:
            result["adopted"] = adoption_result(found, _comparable(before), _comparable(after))
            for warning in result["adopted"]["warnings"]:
                module.warn(warning)
    result["buildconfig"] = after
    result["name"] = name
    result["trigger"] = desired["trigger_tag"]
    return result


def existing_buildconfig(module, existing, result):
    """state=existing, a scratch build's read-only path: the BuildConfig found, as it is; nothing is written, so
    its ref and bump-release commit stay the last user build's (the one the cluster's trigger and the wave build)."""
    params = module.params
    if existing is None:
        raise OsbsFlowError(
            "there is no BuildConfig for %s at branch %s in namespace %s, and state=existing writes none: a scratch "
            "build is made from the BuildConfig a user build left; run a user build of the branch first"
            % (mask_credentials(params["git_uri"]), git_branch_name(params["git_branch"]), params["namespace"])
        )
    name = existing["metadata"]["name"]
    recorded_base = ((existing.get("metadata") or {}).get("annotations") or {}).get(BASE_IMAGE_ANNOTATION)
    if params["base_image"] and recorded_base and params["base_image"] != recorded_base:
        module.warn("BuildConfig %s/%s builds from %s, not from base_image %s: a build made from it as it is (a scratch "
                    "build) uses %s, as a docker-strategy build replaces the Dockerfile's FROM with the BuildConfig's; "
                    "a user build moves it to %s" % (params["namespace"], name, recorded_base, params["base_image"],
                                                     recorded_base, params["base_image"]))
    trigger = base_imagestreamtag(existing)
    return dict(result, buildconfig=existing, name=name, trigger=trigger[1] if trigger else None)


def _comparable(obj):
    """The object without server bookkeeping, for a diff a person reads."""
    if not obj:
        return {}
    obj = copy.deepcopy(obj)
    metadata = obj.get("metadata", {})
    for key in ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp"):
        metadata.pop(key, None)
    obj.pop("status", None)
    return obj
