#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_base_images
short_description: Import new external base images into the ImageStreamTags BuildConfigs build from
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - For base images the flow does not build (a vendor's C(registry.example.com/ubi9:latest)), finds the
    ImageStreamTags that track each one (tags named by the BuildConfigs' ImageChange triggers, or by their docker
    strategy's C(from) for a trigger without C(from), whose spec tag imports that image), asks the registry
    through the cluster what the image is now, and imports it when its digest is new.
  - What the registry holds is learnt with a preview (an ImageStreamImport with C(import=false), which the
    cluster stores nothing for), in the tag's own import mode, so a tag whose image did not move is left
    untouched and nothing is stored.
  - The preview is still a C(create) on C(imagestreamimports.image.openshift.io) (an audit log records it),
    so the token needs the C(edit) role (or that verb) in each namespace searched and in each namespace whose
    tag a trigger names; C(view) is not enough, not even in check mode. Each preview makes the cluster send one
    manifest GET (more for a manifest list) to the image's registry, per tracked tag and namespace, every run;
    registries with pull limits (Docker Hub counts a manifest GET as a pull) refuse them once the runs exceed
    the limit (C(toomanyrequests)), so keep tags x namespaces x runs under it.
  - A dependent none of whose builds from the image its base names now completed, the newest of them failed,
    is returned in RV(failed_builds) and fails the module (with O(fail_on_error)) on every run until it is
    rebuilt; no wave is returned for it. A dependent whose ImageChange triggers are paused (its repository
    disables autorebuilds) counts as finished.
  - A new image is imported by tag, keeping the tag's import policy (its C(scheduled) flag and import mode) and
    reference policy, so a scheduled tag stays scheduled.
  - Returns in RV(waves) the tags whose dependents need the autorebuild wave (M(osbs.flow.osbs_autorebuild)),
    those whose image moved now, and those whose cascade is unfinished because the cluster imported a new image
    by itself (C(importPolicy.scheduled)) and its ImageChange triggers started the first level of builds. A tag
    whose dependents all have their images needs no wave.
  - Every entry of O(base_images) is checked by the image reference grammar before any ImageStream or
    BuildConfig is read;
    an entry pinned by digest, holding credentials, or malformed fails the module, naming it.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  base_images:
    description:
      - The external images, by tag, as the ImageStreams import them, for example C(registry.example.com/ubi9:latest).
        A name without a registry is Docker Hub's, and a missing tag is C(latest), as the registry reads them.
    type: list
    elements: str
    required: true
  namespace:
    description: Namespace whose BuildConfigs (and their ImageStreams) are searched, unless O(namespaces) is given.
    type: str
    required: true
  namespaces:
    description: Namespaces whose BuildConfigs are searched. By default O(namespace) only.
    type: list
    elements: str
  scheduled_import:
    description:
      - Set C(importPolicy.scheduled) on every tag found to this value, so the cluster re-imports it periodically
        (OpenShift's default interval is 15 minutes) and its ImageChange triggers start the first level of
        dependents by themselves. By default the tags' own policy is kept.
    type: bool
  fail_on_error:
    description:
      - Fail when a base image could not be checked or imported (its registry refused or did not answer), after the
        others were, or when a dependent's build for the image its base names now failed (RV(failed_builds)).
        The role C(osbs.flow.rebuild_dependents) sets V(false), runs the other base images' waves, then fails
        naming it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Previews the images and reports which tags would move; imports nothing and returns no waves.
  diff_mode:
    support: full
    details: The digest and scheduled flag of each tag that moves, before and after.
  idempotent:
    support: full
    details: Once a new image is imported and its wave has run, a second run finds nothing new and stores nothing.
requirements:
  - kubernetes >= 29.0.0
seealso:
  - module: osbs.flow.osbs_autorebuild
  - module: osbs.flow.reactor_import_image
"""

EXAMPLES = r"""
- name: Import the vendors' new base images
  osbs.flow.osbs_base_images:
    namespace: osbs
    base_images:
      - registry.example.com/ubi9:latest
      - registry.example.com/ubi9-minimal:latest
  register: bases

- name: Rebuild what depends on each new base image
  osbs.flow.osbs_autorebuild:
    namespace: "{{ item.namespace }}"
    imagestreamtag: "{{ item.imagestreamtag }}"
    digest: "{{ item.digest }}"
  loop: "{{ bases.waves }}"
"""

RETURN = r"""
bases:
  description: One entry per distinct base image, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The entry as given.
      type: str
    canonical:
      description: The image as the registry reads it, C(registry/repository:tag).
      type: str
    imagestreamtags:
      description: The tags that track it.
      type: list
      elements: dict
      contains:
        imagestreamtag:
          description: C(namespace/name:tag).
          type: str
        digest:
          description: The image the tag names now (in check mode, the one it would name).
          type: str
        previous_digest:
          description: The image it named before this run, or null.
          type: str
        moved:
          description: Whether the registry held a new image.
          type: bool
        scheduled:
          description: Whether the tag is re-imported on the cluster's schedule.
          type: bool
        wave:
          description: Whether its dependents need the autorebuild wave (it is in RV(waves)).
          type: bool
        reason:
          description: Why a wave is due, that none is, or which dependents failed.
          type: str
        failed_builds:
          description: The dependents' builds that failed for the image their base names now (see RV(failed_builds)).
          type: list
          elements: str
errors:
  description: One message per tag whose image could not be checked or imported, naming the image and the tag.
  returned: always
  type: list
  elements: str
failed_builds:
  description:
    - One message per dependent none of whose builds from the image its base names now completed, the newest
      of them Failed, Error or Cancelled, naming the build and the image. No wave is run for it and it is not
      rebuilt by this module (a schedule would rebuild a broken recipe every interval); with O(fail_on_error)
      the module fails, so every scheduled run fails until a person rebuilds it (the build playbook) or the base
      moves again. A dependent whose triggers are paused (its repository disables autorebuilds) is never listed.
  returned: always
  type: list
  elements: str
lines:
  description: One line per tag for a person to read (the image, its tag, its digest, whether it is new, and why a wave is or is not due).
  returned: always
  type: list
  elements: str
waves:
  description: The tags whose dependents need M(osbs.flow.osbs_autorebuild), with what it takes.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the tag.
      type: str
    imagestreamtag:
      description: The tag, C(name:tag).
      type: str
    digest:
      description: The image the tag names.
      type: str
    image:
      description: The base image entry it tracks.
      type: str
    reason:
      description: Why the wave is due.
      type: str
"""

from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule
from ansible_collections.osbs.flow.plugins.module_utils.base_images import run_base_images


def main():
    argument_spec = dict(
        base_images=dict(type="list", elements="str", required=True),
        namespace=dict(type="str", required=True),
        namespaces=dict(type="list", elements="str"),
        scheduled_import=dict(type="bool"),
        fail_on_error=dict(type="bool", default=True),
    )
    module = OsbsOpenShiftModule(argument_spec=argument_spec, supports_check_mode=True)
    module.run(run_base_images)


if __name__ == "__main__":
    main()
