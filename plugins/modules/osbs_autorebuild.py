#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_autorebuild
short_description: Rebuild every image that depends on a new image, parents before children
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Starting from an image just imported by M(osbs.flow.reactor_import_image), works out every BuildConfig
    that depends on it, transitively (a dependent's ImageChange trigger names the ImageStreamTag of its
    parent's image), and rebuilds them in dependency order. The BuildConfigs are listed once per namespace.
  - For each dependent, reads its repo config file (C(.osbs-repo-config) unless its stop_autorebuild_if_disabled
    configuration names another) at the commit its BuildConfig records, with a shallow fetch of that one
    commit, for all dependents at once. When autorebuilds are disabled it is C(skipped), and a build the
    cluster's ImageChange trigger already started for this base image is cancelled (what atomic-reactor's
    stop_autorebuild_if_disabled plugin did). A malformed file fails that dependent alone.
  - Otherwise starts its autorebuild as M(osbs.flow.osbs_build) does in O(osbs.flow.osbs_build#module:mode=autorebuild),
    naming the parent's new digest. A build the cluster's ImageChange trigger already started for that digest
    is adopted, so there are never two builds for one trigger. When the build ends, its image is imported and
    the wave goes on to the dependent's own dependents.
  - Every dependent whose parents are done starts at once, not one after the other; the builds run side by side,
    as many as the cluster schedules, and are followed by one watch per namespace, so each image is imported as
    soon as its build ends, in whatever order the builds end. A child starts as soon as its parents' new images
    are imported. A dependent whose BuildConfig is busy with another build (a user build from the old base, say)
    is followed the same way and started once that build has ended, without holding up the others.
    O(parallel) bounds only the short steps that run at the same time (at most that many builds
    being started or adopted, and apart from them that many images being imported), never how many builds run.
  - One failure does not stop independent branches; the children of a failed dependent are C(blocked).
    A cycle (BuildConfigs triggering on each other's images) fails its members, naming them, and is never followed.
  - The result holds a row per dependent and a fixed-width table of them; the module fails at the end when any
    dependent failed (unless O(fail_on_error=false)).
  - With nothing new (the wave run again for the same digest) no build starts and C(changed) is false;
    the builds made for that digest are found and reported C(unchanged).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  namespace:
    description: Namespace of the new image's ImageStream, and of the dependents unless O(namespaces) is given.
    type: str
    required: true
  imagestreamtag:
    description:
      - The ImageStreamTag of the new image, C(name:tag), as RV(osbs.flow.reactor_import_image#module:imagestreamtag)
        returned it. Give this or O(image).
    type: str
  image:
    description: The pull spec by tag of the new image; its ImageStreamTag is derived from it as reactor_import_image does.
    type: str
  digest:
    description:
      - The new image's digest (RV(osbs.flow.reactor_import_image#module:digest)). By default the digest the
        ImageStreamTag points at now.
    type: str
  namespaces:
    description: Namespaces whose BuildConfigs may depend on the image. By default O(namespace) only.
    type: list
    elements: str
  parallel:
    description:
      - How many dependents are started or adopted at the same time, and apart from them how many images are imported
        at the same time (API requests, not builds).
      - It does not limit the builds; they all run at once, as many as the cluster schedules.
    type: int
    default: 4
  wait_timeout:
    description:
      - How long to wait for each build (and for a running build of the same BuildConfig), in seconds, counted from
        when the wave starts or adopts it. Every ready dependent starts at once, so time a build spends queued
        behind the others counts; raise it for a large wave on a cluster that runs few builds at once.
      - At least V(1), since the wave waits for each build to import its image before the dependents built on it start.
    type: int
    default: 3600
  from_latest:
    description:
      - Refused when V(true). Every autorebuild builds the commit each BuildConfig records, the commit of its
        last user build, as the builds the cluster's ImageChange triggers start do (the one commit rule, see
        osbs.flow.osbs_build); to build a branch head, run a user build of it. Kept so that V(false) still runs.
    type: bool
    default: false
  insecure_registry:
    description: The registry the dependents push to is insecure; their images are imported with an insecure import policy.
    type: bool
    default: false
  image_tags:
    description:
      - Give each dependent's new image OSBS's tags (version-release, version, latest, a unique tag and its
        C(additional-tags)) and its Build the metadata annotations, as M(osbs.flow.osbs_image_tags) does, then
        import its version-release and version tags beside the pushed one, so that its own dependents built
        C(FROM it:1.0) are in the wave. Needs registry credentials that may push (O(registry_dockercfg_path)).
    type: bool
    default: false
  registry_dockercfg_path:
    description:
      - With O(image_tags), a dockercfg or containers auth file with credentials for the dependents' registry;
        without it, each dependent's Build's push secret, as M(osbs.flow.osbs_image_tags) reads it.
    type: path
  registry_ca_cert:
    description: With O(image_tags), the CA certificate of the registry's TLS certificate; by default the system's trust.
    type: path
  git_cache_dir:
    description:
      - Directory for the bare git repositories the repo config files are read from. Kept between runs when
        given (later fetches are smaller); by default a temporary directory removed at the end.
    type: path
  fail_on_error:
    description:
      - Fail the module when a dependent failed. The role C(osbs.flow.autorebuild) sets V(false), writes the report,
        then fails.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details:
      - Starts, cancels and imports nothing. Direct dependents are checked as osbs_build's check mode does; their
        children are reported as rebuilt once the parent would be.
  diff_mode:
    support: none
    details: Builds are not object changes a diff could show; the report lists what happened.
  idempotent:
    support: full
    details: A second run for the same digest finds the builds of the first and starts none.
requirements:
  - kubernetes >= 29.0.0
  - git
seealso:
  - module: osbs.flow.reactor_import_image
  - module: osbs.flow.osbs_build
"""

EXAMPLES = r"""
- name: Import the new base image
  osbs.flow.reactor_import_image:
    namespace: osbs
    image: "{{ build.output_image }}"
    expected_digest: "{{ build.image_digest }}"
  register: imported

- name: Rebuild everything built on it
  osbs.flow.osbs_autorebuild:
    namespace: osbs
    imagestreamtag: "{{ imported.imagestreamtag }}"
    digest: "{{ imported.digest }}"
    parallel: 4
  register: wave

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ wave.report_table.split('\n') }}"
"""

RETURN = r"""
rows:
  description: One row per dependent, parents before children.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The dependent's image (the pull spec it pushes to).
      type: str
    buildconfig:
      description: Name of its BuildConfig.
      type: str
    namespace:
      description: Namespace of its BuildConfig.
      type: str
    action:
      description:
        - V(rebuilt) (this run started its build), V(adopted) (a build the cluster's trigger started for the
          new base image, followed and imported), V(unchanged) (its build for this base image existed and its
          image was imported already), V(skipped) (autorebuilds disabled, or its parent was not rebuilt),
          V(failed), V(blocked) (a parent failed).
      type: str
    build:
      description: Name of the build, or null.
      type: str
    digest:
      description: Its new image digest, or null.
      type: str
    nvr:
      description: With O(image_tags), its new image's C(name-version-release), or null.
      type: str
    unique_pull_spec:
      description: With O(image_tags), the pull spec by its new image's unique tag, or null.
      type: str
    warnings:
      description: What tagging its image warned about (an invalid C(additional-tags) line, a missing label).
      type: list
      elements: str
      returned: tagging warned
    duration:
      description: How long its build took, in seconds, or null.
      type: float
    reason:
      description: Why, in words; for a failure, the error (a malformed repo config names its file and value).
      type: str
    depth:
      description: 1 for a direct dependent of the new image, 2 for a dependent of one of those, and so on.
      type: int
    parents:
      description: The BuildConfigs (or the new ImageStreamTag) it waits for, as C(namespace/name).
      type: list
      elements: str
    traceback:
      description: The Python traceback of an unexpected error (a bug, or a broken connection) that failed the dependent.
      type: str
      returned: such an error happened
report_table:
  description: The rows as a fixed-width table for a person to read.
  returned: always
  type: str
summary:
  description: How many dependents got each action.
  returned: always
  type: dict
  sample: {rebuilt: 2, skipped: 1, failed: 1}
failed_dependents:
  description: Names of the BuildConfigs that failed (the module fails then, unless O(fail_on_error=false)).
  returned: always
  type: list
  elements: str
cycles:
  description: Each dependency cycle found, as the BuildConfigs in order, first repeated at the end.
  returned: always
  type: list
  elements: list
cancelled_builds:
  description: Builds the cluster's trigger started for dependents whose autorebuilds are disabled, cancelled.
  returned: always
  type: list
  elements: str
imagestreamtag:
  description: The new image's ImageStreamTag, C(namespace/name:tag).
  returned: always
  type: str
digest:
  description: The new image's digest the wave started from.
  returned: always
  type: str
elapsed:
  description: Seconds the wave took.
  returned: always
  type: float
git_fetches:
  description: How many git fetches reading the repo config files took.
  returned: always
  type: int
unreachable:
  description:
    - When dependents failed because the API server stopped answering (its URL and what failed), else null.
      The builds it was running may have ended C(Error) meanwhile. Run the wave again once the server answers;
      a build that ended unsuccessfully for this base image is started again, one that runs or completed is adopted.
  returned: always
  type: str
  sample: "cannot reach the API server https://127.0.0.1:8443 (GET /apis/build.openshift.io/v1/namespaces/osbs/builds): connection refused; ..."
"""

from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule
from ansible_collections.osbs.flow.plugins.module_utils.autorebuild import run_autorebuild


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        imagestreamtag=dict(type="str"),
        image=dict(type="str"),
        digest=dict(type="str"),
        namespaces=dict(type="list", elements="str"),
        parallel=dict(type="int", default=4),
        wait_timeout=dict(type="int", default=3600),
        from_latest=dict(type="bool", default=False),
        insecure_registry=dict(type="bool", default=False),
        image_tags=dict(type="bool", default=False),
        registry_dockercfg_path=dict(type="path"),
        registry_ca_cert=dict(type="path"),
        git_cache_dir=dict(type="path"),
        fail_on_error=dict(type="bool", default=True),
    )
    module = OsbsOpenShiftModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("imagestreamtag", "image")],
        mutually_exclusive=[("imagestreamtag", "image")],
    )
    if module.params["parallel"] < 1:
        module.fail_json(msg="parallel is %d: give at least 1" % module.params["parallel"])
    module.require_seconds("wait_timeout", minimum=1,
                           why=": the wave waits for each build, to import its image before the dependents built on it start")
    module.run(run_autorebuild)


if __name__ == "__main__":
    main()
