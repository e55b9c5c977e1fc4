# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tags a build's image gets, as OSBS gave them (pure functions; osbs_image_tags applies them).

atomic-reactor 1.6's tag_by_labels and tag_from_config plugins, and osbs-client's unique image tag:

- primary: `name:version-release`, the build's NVR, which no other build has;
- floating: `name:version` and `name:latest`, moved to the newest build (not for scratch builds);
- unique: one tag per build that no other build ever gets (osbs-client's `<target>-<random>-<timestamp>`;
  here `<branch>-<build's creation time>-<the Build's uid>`, so a rerun for the same Build finds the same tag);
- additional: the lines of the repository's `additional-tags` file (beside the Dockerfile); as tag_from_config,
  a line that is not a valid tag, or has a `-` (reserved for version-release tags), is reported and skipped.

And what exit_store_metadata_in_osv3 wrote on the Build as annotations (`repositories`, `digests`, `commit_id`,
`base-image-name`, `base-image-id`, `image-id`, `dockerfile`), with osbs-client's key names and JSON shapes.
"""

from __future__ import annotations

import json
import posixpath
import re

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import TAG_RULES

ADDITIONAL_TAGS_FILE = "additional-tags"
NAME_LABEL, VERSION_LABEL, RELEASE_LABEL = "name", "version", "release"
TAG_MAX_LENGTH = 128
# ASCII: Python's \w also matches letters such as ü, which no registry accepts in a tag.
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_NOT_TAG_CHARACTER = re.compile(r"[^\w.-]+", re.ASCII)
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")

PRIMARY, FLOATING, UNIQUE, ADDITIONAL = "primary", "floating", "unique", "additional"

# The `version` key of exit_store_metadata_in_osv3's `digests` entries, by manifest media type.
DIGEST_VERSIONS = {
    "application/vnd.docker.distribution.manifest.v2+json": "v2",
    "application/vnd.docker.distribution.manifest.list.v2+json": "v2_list",
    "application/vnd.oci.image.manifest.v1+json": "oci",
    "application/vnd.oci.image.index.v1+json": "oci_index",
}


def is_valid_tag(tag):
    return isinstance(tag, str) and bool(_TAG.match(tag))


def unique_tag(branch, created, uid):
    """The unique tag of one Build: `<branch>-<YYYYmmddHHMMSS>-<8 hex of its uid>`, valid tag grammar.

    `created` is the Build's metadata.creationTimestamp (RFC 3339, UTC), `uid` its metadata.uid: the uid
    makes it collision-free (two Builds never share one, even of BuildConfigs deleted and made again), the
    time makes the tags sort by build. The branch's characters outside the tag grammar become `_`, and it
    is cut so that the tag stays within 128 characters. Scratch builds (osbs_build's) use it as well.
    """
    match = _TIMESTAMP.match(created or "")
    if not match:
        raise OsbsFlowError("the Build's creationTimestamp %r is not an RFC 3339 time: cannot make its unique tag" % (created,))
    hex_uid = re.sub(r"[^0-9a-f]", "", (uid or "").lower())
    if len(hex_uid) < 8:
        raise OsbsFlowError("the Build's uid %r has fewer than 8 hex digits: cannot make its unique tag" % (uid,))
    suffix = "-%s-%s" % ("".join(match.groups()), hex_uid[:8])
    prefix = _NOT_TAG_CHARACTER.sub("_", branch or "").lstrip(".-")[:TAG_MAX_LENGTH - len(suffix)] or "none"
    return prefix + suffix


def additional_tags_path(context_dir, dockerfile_path):
    """Where tag_from_config looked: `additional-tags` in the Dockerfile's directory."""
    dockerfile = posixpath.normpath(posixpath.join(context_dir or "", dockerfile_path or "Dockerfile"))
    return posixpath.join(posixpath.dirname(dockerfile), ADDITIONAL_TAGS_FILE)


# tag_from_config had no bound; here each tag costs a HEAD and maybe a PUT, and the file is anyone's commit.
MAX_ADDITIONAL_TAGS = 100
_SHOWN_REFUSED_LINES = 10
_SHOWN_LINE_LENGTH = 80
# The line ends of Python's universal newlines, which tag_from_config's `for tag in tags_file` split on
# (str.splitlines would also split on U+2028, form feed and others, making two tags of one refused line).
_LINE_END = re.compile(r"\r\n|\r|\n")


def parse_additional_tags(text):
    """(valid tags in file order without repeats, at most MAX_ADDITIONAL_TAGS, [(line, why it is refused)])."""
    valid, refused = [], []
    for line in _LINE_END.split(text or ""):
        tag = line.strip()
        if not tag:
            continue
        if not is_valid_tag(tag):
            refused.append((tag, "it is not a valid tag (%s)" % TAG_RULES))
        elif "-" in tag:
            refused.append((tag, "it has a '-', which only version-release tags have"))
        elif tag in valid:
            continue
        elif len(valid) == MAX_ADDITIONAL_TAGS:
            refused.append((tag, "the file has more than %d tags: this one and those after it are not applied"
                            % MAX_ADDITIONAL_TAGS))
            break
        else:
            valid.append(tag)
    return valid, refused


def additional_tags_warnings(refused):
    """One short warning per refused line, for the first few, then one saying how many more there are."""
    def shown(tag):
        return repr(tag if len(tag) <= _SHOWN_LINE_LENGTH else tag[:_SHOWN_LINE_LENGTH] + "...")
    warnings = ["additional-tags: %s is not applied: %s" % (shown(tag), why) for tag, why in refused[:_SHOWN_REFUSED_LINES]]
    if len(refused) > _SHOWN_REFUSED_LINES:
        warnings.append("additional-tags: %d more lines are not applied" % (len(refused) - _SHOWN_REFUSED_LINES))
    return warnings


def nvr_of(labels):
    """(name, version, release) from the image's labels; a missing one is None."""
    labels = labels or {}
    return tuple((labels.get(key) or None) for key in (NAME_LABEL, VERSION_LABEL, RELEASE_LABEL))


def planned_tags(labels, unique, additional=(), scratch=False):
    """[(tag, kind)] for the image, and the warnings about tags it cannot have.

    Without `version` there is no version or version-release tag, without `release` no version-release tag:
    each is a warning naming the label (OSBS failed the build there; the image is already pushed here).
    """
    _name, version, release = nvr_of(labels)
    plan, warnings = [(unique, UNIQUE)], []
    missing = {VERSION_LABEL: "no version or version-release tag", RELEASE_LABEL: "no version-release tag"}
    for label, value in ((VERSION_LABEL, version), (RELEASE_LABEL, release)):
        if value is None:
            warnings.append("the image has no %r label: it gets %s" % (label, missing[label]))
        elif not is_valid_tag(value):
            warnings.append("the image's %r label %r cannot be part of a tag (%s): it gets %s"
                            % (label, value, TAG_RULES, missing[label]))
    version = version if is_valid_tag(version) else None
    release = release if is_valid_tag(release) else None
    if version and release:
        if is_valid_tag("%s-%s" % (version, release)):
            plan.append(("%s-%s" % (version, release), PRIMARY))
        else:
            warnings.append("%s-%s is longer than %d characters: the image gets no version-release tag"
                            % (version, release, TAG_MAX_LENGTH))
    if scratch:
        return [item for item in plan if item[1] == UNIQUE], warnings
    if version:
        plan.append((version, FLOATING))
    plan.append(("latest", FLOATING))
    taken = {tag for tag, _kind in plan}
    plan.extend((tag, ADDITIONAL) for tag in additional if tag not in taken)
    return plan, warnings


def nvr_text(labels):
    name, version, release = nvr_of(labels)
    if not (name and version and release):
        return None
    return "%s-%s-%s" % (name.replace("/", "-"), version, release)


def build_annotations(registry, repository, tags, digest, media_type, config_digest, commit, base_image, base_digest,
                      dockerfile):
    """exit_store_metadata_in_osv3's annotations of a build whose image has `tags` [(tag, kind, points_here)]."""
    def specs(*kinds):
        return ["%s/%s:%s" % (registry, repository, tag) for tag, kind, here in tags if kind in kinds and here]
    repositories = {"primary": specs(PRIMARY, ADDITIONAL), "floating": specs(FLOATING), "unique": specs(UNIQUE)}
    version = DIGEST_VERSIONS.get(media_type, media_type)
    digests = [{"registry": registry, "repository": repository, "tag": tag, "digest": digest, "version": version}
               for tag, _kind, here in tags if here]
    return {
        "repositories": json.dumps(repositories, sort_keys=True),
        "digests": json.dumps(digests, sort_keys=True),
        "commit_id": commit or "",
        "base-image-name": base_image or "",
        "base-image-id": base_digest or "",
        "image-id": config_digest or "",
        "dockerfile": dockerfile or "",
    }


# Kubernetes refuses an object whose annotations, keys and values together, pass 256 KiB (apimachinery
# ValidateAnnotations, TotalAnnotationSizeLimitB); a big Dockerfile must not make the whole patch fail.
ANNOTATIONS_SIZE_LIMIT = 256 * 1024
DOCKERFILE_ANNOTATION = "dockerfile"


def _size(annotations):
    return sum(len(key.encode("utf-8")) + len((value or "").encode("utf-8")) for key, value in annotations.items())


def fit_annotations(annotations, current, commit=None, limit=ANNOTATIONS_SIZE_LIMIT):
    """(annotations, warning or None): the `dockerfile` annotation cut, with a note saying so, when the Build's
    annotations after the patch (`current` with `annotations` over it) would pass the limit."""
    after = dict(current or {}, **annotations)
    excess = _size(after) - limit
    dockerfile = annotations.get(DOCKERFILE_ANNOTATION) or ""
    if excess <= 0 or not dockerfile:
        return annotations, None
    where = "commit %s" % commit if commit else "the commit built"
    full = len(dockerfile.encode("utf-8"))
    note = "\n# osbs.flow: cut to %%d of %d bytes (Kubernetes limits a Build's annotations to %d bytes); the whole " \
           "Dockerfile is in %s\n" % (full, limit, where)
    keep = full - excess - len((note % full).encode("utf-8"))
    if keep <= 0:
        cut = "# osbs.flow: the Dockerfile (%d bytes) is left out: the Build's other annotations leave no room for it " \
              "(Kubernetes limits them to %d bytes); it is in %s\n" % (full, limit, where)
    else:
        head = dockerfile.encode("utf-8")[:keep].decode("utf-8", "ignore")
        cut = head + note % len(head.encode("utf-8"))
    warning = ("the Dockerfile (%d bytes) does not fit in the Build's annotations (Kubernetes allows %d bytes in all): "
               "the %r annotation has %s" % (full, limit, DOCKERFILE_ANNOTATION,
                                             "its first %d bytes" % len(head.encode("utf-8")) if keep > 0 else "a note instead"))
    return dict(annotations, **{DOCKERFILE_ANNOTATION: cut}), warning
