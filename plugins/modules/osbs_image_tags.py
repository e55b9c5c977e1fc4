#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_image_tags
short_description: Give a completed build's image OSBS's tags and record the build's metadata on the Build
version_added: 0.2.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - What atomic-reactor's tag_by_labels, tag_from_config and store_metadata_in_osv3 plugins did, after the build,
    from where ansible-playbook runs (nothing runs inside the build).
  - The image is the digest the Build pushed (C(status.output.to.imageDigest)); a Build that completed without one
    is tagged only when the image at its pushed tag carries the builder's labels C(io.openshift.build.name) and
    C(io.openshift.build.namespace) naming it.
  - Its C(name), C(version) and C(release) labels, read from the image's configuration in the registry (so whoever
    set them, the Dockerfile or the BuildConfig's C(spec.output.imageLabels)), give the tags, all in the
    repository the build pushed to, all naming that one digest -
    C(version-release) (the NVR), C(version) and C(latest) (floating), a unique tag that no other build gets,
    C(<branch>-<YYYYmmddHHMMSS of the Build's creation>-<8 hex digits of the Build's uid>), and the tags listed in
    the repository's C(additional-tags) file beside the Dockerfile at the commit built (one a line; a line that is
    not a valid tag, or has a C(-), which only version-release tags have, is skipped with a warning naming it;
    at most 100 tags are applied; a file that is not UTF-8 text is a warning, and the other tags are made).
  - A missing C(version) or C(release) label is a warning; the tags that need it are not made.
  - Each tag is moved with one manifest PUT of the image's manifest as the registry stores it (a manifest list or
    OCI index stays one, with its own media type as C(Content-Type)), never by pulling or pushing layers, and only
    when the tag names another digest. A registry that stores the PUT under another digest fails the task, naming
    both digests.
  - A floating or additional tag is not moved back to an older image (one whose configuration's C(created) is
    earlier than the image there; C(created) is the build host's clock), with a warning naming both times. An
    image there that says it was created more than an hour ahead of this host's clock, or says not when, loses
    the tag, with a warning. A version-release or unique tag that names another image keeps it, with a warning.
  - Manifests and image configurations read are checked against their digests.
  - With O(scratch), only the unique tag is made, as for OSBS's scratch builds.
  - A registry has no compare-and-set for tags. Two runs for two builds of one image at the same moment each
    read the image a floating tag names before moving it, so the older build's run can still move it back if
    its read comes just before the newer build's PUT; a rerun for the newer build puts it right.
  - The Build gets the annotations exit_store_metadata_in_osv3 wrote, under the same keys - C(repositories)
    (JSON, C(primary), C(floating) and C(unique) pull specs), C(digests) (JSON, one entry per tag), C(commit_id),
    C(base-image-name), C(base-image-id), C(image-id) (the configuration's digest) and C(dockerfile) - with one
    merge patch of the annotations that differ (OpenShift allows it on a completed Build). Kubernetes refuses
    annotations over 256 KiB in all, so a Dockerfile that would pass that is cut in C(dockerfile), ending with a
    note naming the commit that has the whole file, with a warning.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  namespace:
    description: Namespace of the Build.
    type: str
    required: true
  build:
    description: Name of the completed Build (M(osbs.flow.osbs_build)'s RV(osbs.flow.osbs_build#module:name)).
    type: str
    required: true
  scratch:
    description:
      - A scratch build - only the unique tag is made; C(latest), C(version) and the NVR tag are not touched.
      - A Build labelled C(osbs.flow/scratch=true) (M(osbs.flow.osbs_build)'s scratch builds) is tagged as one
        whatever this says, with a warning when it says V(false).
    type: bool
    default: false
  annotate:
    description: Write the metadata annotations on the Build.
    type: bool
    default: true
  registry_uri:
    description:
      - The registry the build pushed to, C([http[s]://]host[:port][/v2]). When given, a Build that pushed
        elsewhere is refused; C(http://) means an insecure registry.
    type: str
  registry_dockercfg_path:
    description:
      - A C(.dockercfg) or C(config.json)/C(auth.json) file with credentials for the registry that may push there.
      - Without it, the credentials for the registry in the Build's push secret (C(spec.output.pushSecret), read
        from the cluster, which fills it in from the C(builder) ServiceAccount when the BuildConfig names none),
        so the job needs no registry credential of its own; without a push secret, none.
    type: path
  registry_ca_cert:
    description: The CA certificate that signed the registry's TLS certificate; by default the system's trust.
    type: path
  registry_insecure:
    description: Do not verify the registry's TLS certificate.
    type: bool
    default: false
  registry_timeout:
    description: Seconds each registry request may take.
    type: int
    default: 30
  cache_dir:
    description:
      - Directory of the bare git repositories the C(additional-tags) file and the Dockerfile are read from, as
        M(osbs.flow.osbs_source_info)'s O(osbs.flow.osbs_source_info#module:cache_dir) (a commit already there is
        not fetched again).
    type: path
    default: ~/.cache/osbs.flow/sources
  git_timeout:
    description: Seconds one git command may take.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: Reads the registry and the Build and says which tags would move and whether the annotations would change.
  diff_mode:
    support: full
    details: Shows, for each tag that moves, the digest it named before and after, and the annotations that change.
  idempotent:
    support: full
    details: A second run finds every tag at the image and the annotations in place, and writes nothing.
requirements:
  - kubernetes >= 29.0.0
  - requests
  - dockerfile-parse
seealso:
  - module: osbs.flow.osbs_build
  - module: osbs.flow.reactor_import_image
"""

EXAMPLES = r"""
- name: Tag the image of the build
  osbs.flow.osbs_image_tags:
    namespace: osbs
    build: "{{ build.name }}"
    registry_uri: registry.example.com
    registry_dockercfg_path: /run/secrets/registry/config.json
  register: tagged

- name: Say which image it was
  ansible.builtin.debug:
    msg: "{{ tagged.nvr }} is {{ tagged.unique_pull_spec }}"

- name: A scratch build gets its unique tag only
  osbs.flow.osbs_image_tags:
    namespace: osbs
    build: "{{ scratch_build.name }}"
    scratch: true
"""

RETURN = r"""
digest:
  description: The image's digest, which every tag names.
  returned: always
  type: str
  sample: sha256:6d1ef012b567...
media_type:
  description: The media type of its manifest.
  returned: always
  type: str
  sample: application/vnd.oci.image.manifest.v1+json
repository:
  description: The repository the build pushed to, C(host/path).
  returned: always
  type: str
  sample: registry.example.com/containers/app
nvr:
  description: C(name-version-release) from the image's labels (C(/) in the name becomes C(-)), or null when one is missing.
  returned: always
  type: str
  sample: containers-app-1.0-3
name:
  description: The image's C(name) label, or null.
  returned: always
  type: str
version:
  description: The image's C(version) label, or null.
  returned: always
  type: str
release:
  description: The image's C(release) label, or null.
  returned: always
  type: str
scratch:
  description: Whether only the unique tag was made.
  returned: always
  type: bool
unique_tag:
  description: The build's unique tag.
  returned: always
  type: str
  sample: main-20261204185309-3f9a2c1b
unique_pull_spec:
  description: The pull spec by the unique tag.
  returned: always
  type: str
  sample: registry.example.com/containers/app:main-20261204185309-3f9a2c1b
pull_spec_by_digest:
  description: The pull spec by digest.
  returned: always
  type: str
tags:
  description: Each tag of the image, in the order made.
  returned: always
  type: list
  elements: dict
  contains:
    tag:
      description: The tag.
      type: str
    kind:
      description: C(unique), C(primary) (version-release), C(floating) (version, latest) or C(additional).
      type: str
    action:
      description:
        - C(moved) (in check mode, would move), C(unchanged) (it named the image already), or C(kept)
          (it names another image that keeps it; see the description).
      type: str
    previous_digest:
      description: The digest the tag named before, or null.
      type: str
    pull_spec:
      description: The pull spec by this tag.
      type: str
imagestream_tags:
  description:
    - The version-release, version and latest tags that name the image now (in check mode, would name), for
      M(osbs.flow.reactor_import_image)'s O(osbs.flow.reactor_import_image#module:tags).
  returned: always
  type: list
  elements: str
registry_writes:
  description: How many manifest PUTs this run sent (0 in check mode and when nothing moved).
  returned: always
  type: int
annotations_changed:
  description: Whether the Build's metadata annotations were (in check mode, would be) written.
  returned: always
  type: bool
"""

from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule
from ansible_collections.osbs.flow.plugins.module_utils.repo_source import GIT_TIMEOUT
from ansible_collections.osbs.flow.plugins.module_utils.source_info import DEFAULT_CACHE_DIR
from ansible_collections.osbs.flow.plugins.module_utils.tag_build import run_image_tags
from ansible_collections.osbs.flow.plugins.module_utils.registry_api import DEFAULT_TIMEOUT


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        build=dict(type="str", required=True),
        scratch=dict(type="bool", default=False),
        annotate=dict(type="bool", default=True),
        registry_uri=dict(type="str"),
        registry_dockercfg_path=dict(type="path"),
        registry_ca_cert=dict(type="path"),
        registry_insecure=dict(type="bool", default=False),
        registry_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        cache_dir=dict(type="path", default=DEFAULT_CACHE_DIR),
        git_timeout=dict(type="int", default=GIT_TIMEOUT),
    )
    module = OsbsOpenShiftModule(argument_spec=argument_spec, supports_check_mode=True)
    module.run(run_image_tags)


if __name__ == "__main__":
    main()
