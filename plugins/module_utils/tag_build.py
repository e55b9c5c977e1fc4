# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The osbs_image_tags module: a completed Build's image gets OSBS's tags and the Build its metadata.

The image is the digest the build pushed (status.output.to.imageDigest; without one, the image at the pushed
tag, when its builder labels name this Build). Its labels give the NVR (read from its configuration blob in
the registry, as tag_by_labels read the built image's). Each tag is moved by one manifest PUT of the manifest
as stored (so the digest stays the same), and only when it names another digest: a rerun writes nothing.
Floating tags are not moved back to an older image; a version-release tag or a unique tag that names
another image is never overwritten. Then the Build gets exit_store_metadata_in_osv3's annotations with one
merge patch, which OpenShift allows on a completed Build (openshift-apiserver
pkg/build/apis/build/validation/validation.go ValidateBuildUpdate: only spec and a terminal phase are frozen).
"""

from __future__ import annotations

import base64
import datetime
import json
import posixpath
import re

from ansible_collections.osbs.flow.plugins.module_utils.dockerfile import base_image
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.image_tags import (
    ADDITIONAL,
    FLOATING,
    PRIMARY,
    UNIQUE,
    additional_tags_path,
    additional_tags_warnings,
    build_annotations,
    fit_annotations,
    is_valid_tag,
    nvr_of,
    nvr_text,
    parse_additional_tags,
    planned_tags,
    unique_tag,
)
from ansible_collections.osbs.flow.plugins.module_utils.images import parse_image_reference
from ansible_collections.osbs.flow.plugins.module_utils.import_image import BUILD_NAME_LABEL, BUILD_NAMESPACE_LABEL
from ansible_collections.osbs.flow.plugins.module_utils.openshift import ApiError
from ansible_collections.osbs.flow.plugins.module_utils.registry_api import LIST_TYPES, RegistryClient
from ansible_collections.osbs.flow.plugins.module_utils.registry_uri import parse_registry_uri
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import GitError
from ansible_collections.osbs.flow.plugins.module_utils.scratch_build import SCRATCH_LABEL
from ansible_collections.osbs.flow.plugins.module_utils.git_input import FULL_COMMIT
from ansible_collections.osbs.flow.plugins.module_utils.resources import (
    BUMP_RELEASE_ANNOTATION,
    build_base_digest,
    build_commit,
    build_config_of,
    build_phase,
)
from ansible_collections.osbs.flow.plugins.module_utils.pulp_sync import dockercfg_credentials, read_dockercfg

MOVED, UNCHANGED, KEPT = "moved", "unchanged", "kept"
# How far ahead of this host's clock an image's `created` may be (build hosts' clocks differ) before it counts as false.
CLOCK_SKEW = datetime.timedelta(hours=1)


def image_config(registry, repository, digest):
    """(media type, raw manifest, configuration) of the image `digest`; a list's configuration is its first
    child's (the children of one build share their labels)."""
    media_type, body, manifest = registry.manifest(repository, digest)
    single = manifest
    if media_type in LIST_TYPES:
        children = manifest.get("manifests") or []
        if not children:
            raise OsbsFlowError("the manifest list %s@%s has no images" % (repository, digest))
        _child_type, _child_body, single = registry.manifest(repository, children[0]["digest"])
    return media_type, body, registry.config(repository, single), (single.get("config") or {}).get("digest")


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII)


def instant(text):
    """An image configuration's `created` (RFC 3339, any fraction, any offset) as a comparable UTC value, or None."""
    match = _RFC3339.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                               tzinfo=datetime.timezone.utc)
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment, int((fraction or "0")[:9].ljust(9, "0"))


def base_image_of(dockerfile):
    """The base image the Dockerfile names (its final stage's), or None: the annotation is information, so a
    Dockerfile the flow would refuse for another reason (no `name` label, in a BuildConfig adopted from OSBS)
    still gets its image tagged."""
    if not dockerfile:
        return None
    try:
        found = base_image(dockerfile)
    except OsbsFlowError:
        return None
    # An image FROM scratch has no base: exit_store_metadata_in_osv3 wrote "" (base_from_scratch).
    return None if (found or "").lower() == "scratch" else found


def _labels(config):
    return ((config or {}).get("config") or {}).get("Labels") or {}


class BuildTagger:
    """Tags one Build's image; `check_mode` writes nothing and says what would move."""

    def __init__(self, client, registry_client_for, repo_source, check_mode=False):
        self.client = client
        self.registry_client_for = registry_client_for  # (host, Build) -> RegistryClient
        self.repo_source = repo_source
        self.check_mode = check_mode
        self.warnings = []

    def build(self, namespace, name):
        build = self.client.get("Build", namespace, name)
        if build is None:
            raise OsbsFlowError("Build %s/%s does not exist: give the name osbs_build returned" % (namespace, name))
        if build_phase(build) != "Complete":
            raise OsbsFlowError("Build %s/%s is %s, not Complete: only a completed build's image is tagged"
                                % (namespace, name, build_phase(build)))
        return build

    def pushed(self, build):
        """(registry host, repository, pushed tag) of the Build's output."""
        to = ((build.get("spec") or {}).get("output") or {}).get("to") or {}
        where = "Build %s/%s" % (build["metadata"].get("namespace"), build["metadata"]["name"])
        if to.get("kind") != "DockerImage" or not to.get("name"):
            raise OsbsFlowError("%s does not push to a registry by pull spec (spec.output.to is %r): only a "
                                "DockerImage output can be tagged" % (where, to))
        ref = parse_image_reference(to["name"])
        if not ref.registry:
            raise OsbsFlowError("%s pushes to %r, which names no registry" % (where, to["name"]))
        return ref.registry, ref.repository, ref.tag or "latest"

    def image_digest(self, build, registry, repository, pushed_tag):
        """The digest the build pushed; without one in its status, the pushed tag's, if the builder's labels there
        name this Build (as reactor_import_image checks)."""
        digest = ((build.get("status") or {}).get("output") or {}).get("to", {}).get("imageDigest")
        if digest:
            return digest
        digest = registry.tag_digest(repository, pushed_tag)
        namespace, name = build["metadata"].get("namespace"), build["metadata"]["name"]
        labels = _labels(image_config(registry, repository, digest)[2]) if digest else {}
        if (labels.get(BUILD_NAMESPACE_LABEL), labels.get(BUILD_NAME_LABEL)) != (namespace, name):
            raise OsbsFlowError(
                "build %s/%s completed without an image digest, and the image at %s:%s (%s) was not made by it "
                "(its %s label is %r): another push replaced it; nothing was tagged"
                % (namespace, name, repository, pushed_tag, digest or "no image", BUILD_NAME_LABEL, labels.get(BUILD_NAME_LABEL)))
        return digest

    def source_files(self, build):
        """(Dockerfile text, additional-tags text) at the commit built, or (None, None) without a git source."""
        spec = build.get("spec") or {}
        git = (spec.get("source") or {}).get("git") or {}
        commit = build_commit(build)
        if not git.get("uri") or not commit:
            return None, None
        dockerfile_path = ((spec.get("strategy") or {}).get("dockerStrategy") or {}).get("dockerfilePath") or "Dockerfile"
        context_dir = (spec.get("source") or {}).get("contextDir") or ""
        dockerfile = posixpath.normpath(posixpath.join(context_dir, dockerfile_path))
        tags_file = additional_tags_path(context_dir, dockerfile_path)
        commit = self.repo_source.resolve(git["uri"], commit=commit, branch=git.get("ref"))
        return self._read_or_warn(git["uri"], commit, dockerfile), self._read_or_warn(git["uri"], commit, tags_file)

    def _read_or_warn(self, uri, commit, path):
        """A file's text, or None with a warning when it is not one UTF-8 file (a binary additional-tags, a link out
        of the repository): the image is built and pushed already, and these files only add tags and metadata."""
        try:
            return self.repo_source.read_files(uri, commit, [path])[path]
        except GitError as exc:
            self.warnings.append("%s is not used: %s" % (path, exc))
            return None

    def branch_of(self, build):
        """The branch the build is of: the Build's git ref is the commit (OpenShift sets it from the request's
        revision), so the BuildConfig's recorded branch, its osbs-client `git-branch` label, or its ref."""
        name = build_config_of(build)
        bc = self.client.get("BuildConfig", build["metadata"]["namespace"], name) if name else None
        if not bc:
            return None
        try:
            recorded = json.loads((bc["metadata"].get("annotations") or {}).get(BUMP_RELEASE_ANNOTATION) or "{}")
        except ValueError:
            recorded = {}
        ref = (((bc.get("spec") or {}).get("source") or {}).get("git") or {}).get("ref")
        return ((recorded.get("git_branch") if isinstance(recorded, dict) else None)
                or (bc["metadata"].get("labels") or {}).get("git-branch")
                or (ref if ref and not FULL_COMMIT.match(ref) else None))

    def unique_tag_of(self, build):
        """The unique tag the Build's annotations already name (a rerun keeps it; a scratch Build names the tag it
        pushed to in osbs.flow/unique-tag, scratch_build.py), else a new one."""
        pushed = (build["metadata"].get("annotations") or {}).get("osbs.flow/unique-tag")
        if is_valid_tag(pushed):
            return pushed
        try:
            recorded = json.loads((build["metadata"].get("annotations") or {}).get("repositories") or "{}")
        except ValueError:
            recorded = {}
        for pull_spec in (recorded.get("unique") or []) if isinstance(recorded, dict) else []:
            tag = str(pull_spec).rpartition(":")[2]
            if is_valid_tag(tag):
                return tag
        return unique_tag(self.branch_of(build), build["metadata"].get("creationTimestamp"), build["metadata"].get("uid"))

    def created_of(self, registry, repository, tag, digest):
        """The `created` time of the image `digest`, or None (with a warning) when it has none to read: then this
        build's run moves the tag, as OSBS's last push did."""
        media_type, _body, manifest = registry.manifest(repository, digest, signed_schema1=True)
        history = manifest.get("history")
        if manifest.get("schemaVersion") == 1 and isinstance(history, list) and history:
            # Schema 1 (what OSBS's registries still hold at old tags) has no configuration blob.
            try:
                created = json.loads((history[0] or {}).get("v1Compatibility") or "{}").get("created")
            except (ValueError, AttributeError):
                created = None
        elif media_type in LIST_TYPES:
            created = image_config(registry, repository, digest)[2].get("created")
        else:
            created = registry.config(repository, manifest).get("created")
        if not instant(created):
            self.warnings.append("the image %s at %s:%s has no creation time (%r): its tag is moved to this build's image"
                                 % (digest, repository, tag, created))
        return created

    def move(self, registry, repository, tag, kind, digest, media_type, body, created):
        """MOVED, UNCHANGED or KEPT (and the digest there) for one tag."""
        before = registry.tag_digest(repository, tag)
        if before == digest:
            return UNCHANGED, before
        if before and kind in (PRIMARY, UNIQUE):
            what = "version-release" if kind == PRIMARY else "unique"
            self.warnings.append("the %s tag %s:%s names another image (%s), which keeps it: a tag of one build is "
                                 "never given to another" % (what, repository, tag, before))
            return KEPT, before
        if before and kind in (FLOATING, ADDITIONAL):
            there_created = self.created_of(registry, repository, tag, before)
            there = instant(there_created)
            if there and there[0] > datetime.datetime.now(datetime.timezone.utc) + CLOCK_SKEW:
                # No image is made in the future: its clock, or whoever pushed it, is wrong, and it would keep the
                # tag from every build until then.
                self.warnings.append("the image %s at %s:%s says it was created %s, in the future: its tag is moved "
                                     "to this build's image" % (before, repository, tag, there_created))
                there = None
            if instant(created) and there and there > instant(created):
                # A late run does not move it back. `created` is the build host's clock, so say what decided it.
                self.warnings.append("the %s tag %s:%s stays on %s: that image was created %s, after this one (%s)"
                                     % ("floating" if kind == FLOATING else "additional", repository, tag, before,
                                        there_created, created))
                return KEPT, before
        if not self.check_mode:
            registry.put_manifest(repository, tag, media_type, body)
        return MOVED, before

    def run(self, namespace, name, scratch=False, annotate=True):
        build = self.build(namespace, name)
        if (build["metadata"].get("labels") or {}).get(SCRATCH_LABEL) == "true" and not scratch:
            # osbs_build's scratch Builds: latest, the version tag and an NVR are never theirs, whatever the caller says.
            self.warnings.append("Build %s/%s is a scratch build (label %s=true): it gets only its unique tag"
                                 % (namespace, name, SCRATCH_LABEL))
            scratch = True
        host, repository, pushed_tag = self.pushed(build)
        registry = self.registry_client_for(host, build)
        digest = self.image_digest(build, registry, repository, pushed_tag)
        media_type, body, config, config_digest = image_config(registry, repository, digest)
        labels = _labels(config)
        dockerfile, tags_text = self.source_files(build)
        additional, refused = parse_additional_tags(tags_text)
        self.warnings.extend(additional_tags_warnings(refused))
        unique = self.unique_tag_of(build)
        plan, warnings = planned_tags(labels, unique, additional=() if scratch else additional, scratch=scratch)
        self.warnings.extend(warnings)

        rows = []
        for tag, kind in plan:
            action, before = self.move(registry, repository, tag, kind, digest, media_type, body, config.get("created"))
            rows.append({"tag": tag, "kind": kind, "action": action, "previous_digest": before,
                         "pull_spec": "%s/%s:%s" % (host, repository, tag)})
        # As OSBS's repositories, the floating and additional tags are the build's even once a newer image has them.
        here = [(row["tag"], row["kind"], row["action"] != KEPT or row["kind"] in (FLOATING, ADDITIONAL)) for row in rows]
        result = {
            "changed": any(row["action"] == MOVED for row in rows),
            "digest": digest,
            "media_type": media_type,
            "repository": "%s/%s" % (host, repository),
            "nvr": nvr_text(labels),
            "name": nvr_of(labels)[0],
            "version": nvr_of(labels)[1],
            "release": nvr_of(labels)[2],
            "scratch": scratch,
            "unique_tag": unique,
            "unique_pull_spec": "%s/%s:%s" % (host, repository, unique),
            "pull_spec_by_digest": "%s/%s@%s" % (host, repository, digest),
            "tags": rows,
            "imagestream_tags": [row["tag"] for row in rows if row["kind"] in (PRIMARY, FLOATING) and row["action"] != KEPT],
            "registry_writes": registry.writes,
        }
        annotations = build_annotations(
            host, repository, here, digest, media_type, config_digest, build_commit(build),
            base_image_of(dockerfile), build_base_digest(build), dockerfile)
        written = self.annotate(build, annotations) if annotate else {}
        result["annotations_changed"] = bool(written)
        result["changed"] = result["changed"] or result["annotations_changed"]
        current = build["metadata"].get("annotations") or {}
        result["diff"] = {
            "before": {"tags": {row["tag"]: row["previous_digest"] for row in rows if row["action"] == MOVED},
                       "annotations": {key: current.get(key) for key in written}},
            "after": {"tags": {row["tag"]: digest for row in rows if row["action"] == MOVED}, "annotations": written},
        }
        return result

    def annotate(self, build, annotations):
        """Merge-patch the annotations that differ onto the Build; those (in check mode: that would be) written."""
        current = build["metadata"].get("annotations") or {}
        annotations, warning = fit_annotations(annotations, current, build_commit(build))
        if warning:
            self.warnings.append(warning)
        changed = {key: value for key, value in annotations.items() if current.get(key) != value}
        if changed and not self.check_mode:
            self.client.merge_patch("Build", build["metadata"]["namespace"], build["metadata"]["name"],
                                    {"metadata": {"annotations": changed}})
        return changed


def push_secret_credentials(client, build, host):
    """(username, password) for `host` from the Build's push secret (spec.output.pushSecret, which the cluster fills
    in from the builder ServiceAccount when the BuildConfig names none), or None when it names none."""
    namespace = build["metadata"]["namespace"]
    name = (((build.get("spec") or {}).get("output") or {}).get("pushSecret") or {}).get("name")
    if not name:
        return None
    try:
        secret = client.get("Secret", namespace, name)
    except ApiError as exc:
        if exc.status != 403:
            raise
        raise OsbsFlowError("cannot read the push secret %s/%s of Build %s (%s): give the registry's credentials as "
                            "registry_dockercfg_path, or let the job read secrets in %s"
                            % (namespace, name, build["metadata"]["name"], exc.message, namespace))
    if secret is None:
        raise OsbsFlowError("the push secret %s/%s of Build %s does not exist: create it, or give the registry's "
                            "credentials as registry_dockercfg_path" % (namespace, name, build["metadata"]["name"]))
    data = secret.get("data") or {}
    where = "secret %s/%s" % (namespace, name)
    for key in (".dockerconfigjson", ".dockercfg"):
        if data.get(key):
            try:
                parsed = json.loads(base64.b64decode(data[key]).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise OsbsFlowError("%s has a %s that is not base64-encoded JSON" % (where, key))
            return dockercfg_credentials(parsed, host, where)
    raise OsbsFlowError("%s is not a docker secret (no .dockerconfigjson or .dockercfg): give the registry's "
                        "credentials as registry_dockercfg_path" % where)


def registry_clients(params, client=None):
    """(host, Build) -> RegistryClient with the module's registry options: the credentials of registry_dockercfg_path,
    else those of the Build's push secret (read with `client`), so the job needs no credential the cluster has."""
    scheme, configured_host, insecure = parse_registry_uri(params["registry_uri"]) if params.get("registry_uri") else ("https", None, False)
    insecure = insecure or params.get("registry_insecure")
    verify = False if insecure else (params.get("registry_ca_cert") or True)

    def client_for(host, build):
        if configured_host and host != configured_host:
            raise OsbsFlowError("the Build pushed to registry %s, not registry_uri %s: give the registry it pushed to"
                                % (host, configured_host))
        if params.get("registry_dockercfg_path"):
            credentials = read_dockercfg(params["registry_dockercfg_path"], host)
        else:
            credentials = push_secret_credentials(client, build, host) if client is not None else None
        return RegistryClient("http" if scheme == "http" else "https", host, credentials=credentials, verify=verify,
                              timeout=params["registry_timeout"])
    return client_for


def run_image_tags(module):
    """The osbs_image_tags module."""
    from ansible_collections.osbs.flow.plugins.module_utils.repo_source import RepoSource

    params = module.params
    module.require_seconds("registry_timeout", 1)
    tagger = BuildTagger(module.client, registry_clients(params, module.client), RepoSource(params["cache_dir"], timeout=params["git_timeout"]),
                         check_mode=module.check_mode)
    result = tagger.run(params["namespace"], params["build"], scratch=params["scratch"], annotate=params["annotate"])
    for warning in tagger.warnings:
        module.warn(warning)
    if not module._diff:
        result.pop("diff")
    return result
