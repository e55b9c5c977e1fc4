#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: reactor_import_image
short_description: Import a built image into its ImageStream and list the BuildConfigs that depend on it
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - What atomic-reactor's ImportImagePlugin did, as an idempotent module.
  - Imports the image with an C(ImageStreamImport) (C(spec.import=true), which creates the ImageStream of the
    built image when it is missing, with only this tag), so that the ImageStreamTag moves to the new
    digest. That tag is the one a dependent's ImageChange trigger names (see
    M(osbs.flow.osbs_buildconfig)), so on a cluster with active triggers the dependents start building.
  - Reports C(changed) only when a tag now points at a different digest (or the ImageStream was created).
  - With O(expected_digest) (the digest M(osbs.flow.osbs_build) returned), a tag already at that digest is left
    alone with no write request; otherwise the registry is asked first, with an import preview that stores
    nothing; another digest there fails the module and the tag is not moved; then exactly that digest is imported.
  - With O(expected_build) and no O(expected_digest) (a build can complete without a digest, since OpenShift's
    builder records one only when the push returned it), the image the registry's tag holds is checked
    the same way by its labels C(io.openshift.build.name) and C(io.openshift.build.namespace), which
    OpenShift's builder gives every image it builds; an image another build or push left there fails the
    module and the tag is not moved. Without either option the tag's image is imported unverified.
  - An import the registry refuses (image not found, unauthorized, certificate) fails the module with the
    registry's reason.
  - Returns the dependents, the BuildConfigs whose ImageChange trigger names this ImageStreamTag, for
    M(osbs.flow.osbs_autorebuild).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  namespace:
    description: Namespace of the ImageStream (the namespace the builds run in).
    type: str
    required: true
  image:
    description:
      - The pull spec by tag the build pushed to, C(registry/repository:tag), as M(osbs.flow.osbs_build)
        returned it in RV(osbs.flow.osbs_build#module:output_image).
      - The ImageStreamTag is derived from it as for a base image (registry dropped, C(/) becomes C(-),
        C(:latest) when untagged), so it is the tag dependents' triggers watch.
    type: str
    required: true
  expected_digest:
    description:
      - The digest the build pushed. When the registry has another digest at O(image), the module fails
        and moves nothing.
    type: str
  expected_build:
    description:
      - The name of the Build in O(namespace) that pushed O(image) (M(osbs.flow.osbs_build)'s C(name)).
        Used when O(expected_digest) is not given; see the description.
    type: str
  tags:
    description:
      - More tags of O(image)'s repository that name the same image, each imported into its own ImageStreamTag
        of the same ImageStream, checked against the same digest (O(expected_digest), or the one O(image)'s
        import found).
      - These are the version-release and version tags M(osbs.flow.osbs_image_tags) gave the image (its
        RV(osbs.flow.osbs_image_tags#module:imagestream_tags)), so that a dependent built C(FROM base:1.0) is
        found, and rebuilt, when C(1.0) moves.
    type: list
    elements: str
  insecure:
    description: The registry is insecure (plain HTTP or an unverified certificate); the import policy says so.
    type: bool
    default: false
  dependents_namespaces:
    description:
      - Namespaces whose BuildConfigs are searched for dependents. By default only O(namespace).
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    details: Creates and imports nothing; an import preview (which stores nothing) tells whether the tag would move.
  diff_mode:
    support: full
    details: Shows the ImageStreamTag's digest before and after.
  idempotent:
    support: full
    details: Importing the same image again reports no change.
requirements:
  - kubernetes >= 29.0.0
seealso:
  - module: osbs.flow.osbs_build
  - module: osbs.flow.osbs_autorebuild
"""

EXAMPLES = r"""
- name: Import the image the build pushed and find its dependents
  osbs.flow.reactor_import_image:
    namespace: osbs
    image: "{{ build.output_image }}"
    expected_digest: "{{ build.image_digest }}"
  register: imported

- name: Rebuild them
  osbs.flow.osbs_autorebuild:
    namespace: osbs
    imagestreamtag: "{{ imported.imagestreamtag }}"
    digest: "{{ imported.digest }}"
  when: imported.dependents | length > 0

- name: Dependents may live in other namespaces
  osbs.flow.reactor_import_image:
    namespace: osbs
    image: registry.example.com/base/python:3.12
    dependents_namespaces: [osbs, osbs-extras]
"""

RETURN = r"""
imagestream:
  description: Name of the ImageStream.
  returned: always
  type: str
  sample: base-python
tag:
  description: The tag in the ImageStream.
  returned: always
  type: str
  sample: "3.12"
imagestreamtag:
  description: The ImageStreamTag, C(imagestream:tag), that dependents' triggers name.
  returned: always
  type: str
  sample: base-python:3.12
created:
  description: Whether the ImageStream was created (in check mode, would be).
  returned: always
  type: bool
digest:
  description: The digest the tag points at after the import (in check mode, would point at).
  returned: always
  type: str
  sample: sha256:6d1ef012b567...
previous_digest:
  description: The digest the tag pointed at before, or null.
  returned: always
  type: str
image_reference:
  description: The pull spec by digest of the imported image.
  returned: always
  type: str
  sample: registry.example.com/base/python@sha256:6d1ef012b567...
image:
  description: The pull spec that was imported (O(image)).
  returned: always
  type: str
verified_by:
  description:
    - How the imported image was checked to be the one the build pushed, C(digest) (O(expected_digest)) or
      C(build labels) (O(expected_build)); null when neither option was given.
  returned: always
  type: str
  sample: digest
imagestreamtags:
  description: Every ImageStreamTag imported, the one of O(image) first, then those of O(tags).
  returned: always
  type: list
  elements: str
  sample: ["base-python:latest", "base-python:3.12-4", "base-python:3.12"]
moved_imagestreamtags:
  description: Those of RV(imagestreamtags) that moved (in check mode, would move) to the image.
  returned: always
  type: list
  elements: str
dependents:
  description:
    - BuildConfigs whose ImageChange trigger names one of RV(imagestreamtags), sorted by namespace and name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the BuildConfig.
      type: str
    namespace:
      description: Its namespace.
      type: str
    git_uri:
      description: The git repository it builds.
      type: str
    git_branch:
      description: The branch it builds (C(spec.source.git.ref)).
      type: str
    git_commit:
      description: The commit its bump_release configuration records, or null.
      type: str
    repo_config_file:
      description: The repo config file that enables or disables its autorebuilds.
      type: str
    output_image:
      description: The pull spec it pushes to.
      type: str
    trigger:
      description: The ImageChange trigger, as on the BuildConfig (C(imageChange.paused) included).
      type: dict
"""

from ansible_collections.osbs.flow.plugins.module_utils.import_image import run_import
from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        image=dict(type="str", required=True),
        expected_digest=dict(type="str"),
        expected_build=dict(type="str"),
        tags=dict(type="list", elements="str"),
        insecure=dict(type="bool", default=False),
        dependents_namespaces=dict(type="list", elements="str"),
    )
    module = OsbsOpenShiftModule(argument_spec=argument_spec, supports_check_mode=True)
    module.run(run_import)


if __name__ == "__main__":
    main()
