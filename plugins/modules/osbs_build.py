#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_build
short_description: Start a build of an OSBS BuildConfig, never twice, and follow it
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Starts a build through C(buildconfigs/NAME/instantiate), naming the commit and, for an autorebuild,
    the base image that triggered it; then waits with a watch (falling back to polling) until the build
    is Complete, Failed, Error or Cancelled.
  - Never starts a second build for the same thing. When a Complete build of the BuildConfig already exists
    for the same commit and the same base image digest, that build is returned with C(changed=false)
    (unless O(force=true)). The BuildRequest carries the BuildConfig's C(lastVersion), so of two requests
    racing the server accepts one; the other sees the winner's build.
  - While a build of the BuildConfig is New, Pending or Running it refuses, or waits with
    O(when_running=wait). An autorebuild (O(mode=autorebuild)) adopts a build the cluster's ImageChange
    trigger already started for the same base image digest and the commit the BuildConfig records instead
    of starting another.
  - For a user build, the BuildConfig's C(is_autorebuild) label is V(false) when the build starts (so the
    Build carries V(false)) and is set to V(true) right after, as atomic-reactor's CheckAndSetRebuildPlugin
    did, so that builds the cluster starts later are recognised as autorebuilds.
  - On Failed, Error or Cancelled the module fails with the build's reason and the end of its log.
  - Every build has its own release. Right before instantiate the BuildConfig's C(spec.output.imageLabels)
    get this build's identity labels (C(release), C(vcs-type), C(vcs-url), C(vcs-ref), C(build-date),
    C(architecture), C(com.redhat.build-host), and C(name)/C(version) where the Dockerfile has none), written
    under its resourceVersion with its ImageChange triggers paused; the builder appends them as the
    Dockerfile's last LABEL. Right after, the BuildConfig gets the next free release (for the next build the
    cluster may start by itself) and its triggers are unpaused. Labels the Dockerfile sets are kept; a
    Dockerfile's own C(release) is used for a user build, and an autorebuild of it gets C(<release>.<n>).
  - The next free release is above every release of the BuildConfig's Builds and every C(version-release)
    tag of the output ImageStream, so an adopted or recreated BuildConfig does not repeat an NVR. A Dockerfile
    C(release) whose NVR a Build (not Failed, Error or Cancelled) or that ImageStream already has is refused
    before anything is written, as atomic-reactor's bump_release refused it; bump the release in the Dockerfile.
    Each Build records its NVR in the C(osbs.flow/nvr) annotation.
  - The pause around instantiate is one run's lease (its id in the C(osbs.flow/triggers-paused-for-start)
    annotation). Another run waits for it (2 to 32 s, about a minute in all), then fails naming it, and never
    overwrites nor closes it; a window older than two minutes was left by a run that died and is closed.
  - With O(scratch=true), a scratch build as OSBS made them, a Build of its own created from the
    BuildConfig's spec (C(POST builds), as osbs-client's create_scratch_build did), not instantiated, so it
    takes no build number, leaves the BuildConfig (its commit, release, triggers) alone and is not one of its
    builds; the next user build's reuse check and release are as if it never ran. It pushes only to a unique
    tag of its own (RV(unique_tag)), never C(latest); its release is C(scratch.<timestamp>). Every run makes a
    new one. The build playbook does not import it, sync it to Pulp, or start an autorebuild wave for it,
    and does not write the BuildConfig (its buildconfig role uses osbs.flow.osbs_buildconfig's O(osbs.flow.osbs_buildconfig#module:state=existing)).
  - The one commit rule. A user build records its commit on the BuildConfig (C(spec.source.git.ref) and the
    bump-release annotation) in that same write; an autorebuild builds the commit the BuildConfig records,
    never the branch head, as the builds the cluster's trigger starts do.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  buildconfig:
    description: Name of the BuildConfig (the RV(osbs.flow.osbs_buildconfig#module:name) it returned).
    type: str
    required: true
    aliases: [name]
  namespace:
    description: Namespace of the BuildConfig.
    type: str
    required: true
  mode:
    description:
      - V(user) for a build a person asked for; V(autorebuild) for a rebuild after the base image changed.
    type: str
    choices: [user, autorebuild]
    default: user
  git_commit:
    description:
      - The commit to build (a user build). By default the commit the BuildConfig's bump_release configuration
        records (the C(osbs.flow/bump-release) annotation), which is also what an autorebuild always builds.
      - A full commit name (40 hexadecimal digits, 64 in a SHA-256 repository), as C(git rev-parse) prints it. Anything
        else (a branch, a short commit, a value starting with C(-)) is refused before anything is read or written,
        since the builder hands the ref to C(git fetch), and a branch there would build the branch head.
    type: str
  from_latest:
    description:
      - Refused when V(true). An autorebuild builds the commit the BuildConfig records (the one commit rule);
        to build the branch head, run a user build of it. Kept so that playbooks that pass V(false) still run.
    type: bool
    default: false
  scratch:
    description:
      - A scratch build (see above). Only with O(mode=user); O(when_running), O(force) do not apply to it.
    type: bool
    default: false
  dockerfile_labels:
    description:
      - The labels the Dockerfile sets at O(git_commit) (osbs.flow.osbs_source_info's C(labels)), so the identity
        labels leave them as they are. By default those the BuildConfig records (osbs.flow.osbs_buildconfig's
        O(osbs.flow.osbs_buildconfig#module:dockerfile_labels)) when O(git_commit) is its commit; otherwise
        only C(name) is taken as set (the repository the BuildConfig pushes to).
    type: dict
  base_image_digest:
    description:
      - The base image digest the build must use, as reactor_import_image returned it for the parent image.
        When the BuildConfig's ImageStreamTag resolves to another digest, the module fails.
    type: str
  when_running:
    description: What to do while another build of the BuildConfig is New, Pending or Running.
    type: str
    choices: [fail, wait]
    default: fail
  force:
    description: Start a build even when a Complete build for the same commit and base image exists.
    type: bool
    default: false
  wait:
    description: Wait for the build to end. With V(false) the module returns once the build is started.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for the build (and, with O(when_running=wait), for a running one), in seconds.
      - V(0) does not wait, as O(wait=false) does; with O(when_running=wait) a running build then fails the task
        as with O(when_running=fail). A negative value is refused.
    type: int
    default: 3600
  cancel_on_timeout:
    description: Cancel the build when O(wait_timeout) passes; by default it is left running.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Starts and writes nothing; says whether a build would start, and C(changed) is also true when a
      reused or adopted build would move the BuildConfig on to its next release.
  diff_mode:
    support: none
    details: No diff is returned, although starting a build writes the BuildConfig (its identity labels, ref,
      bump-release annotation and a pause of its triggers around instantiate, docs/identity.md).
  idempotent:
    support: full
    details: A Complete build for the same commit and base image digest is returned instead of a new one.
requirements:
  - kubernetes >= 29.0.0
seealso:
  - module: osbs.flow.osbs_buildconfig
  - module: osbs.flow.reactor_import_image
"""

EXAMPLES = r"""
- name: Build app at the commit the playbook resolved
  osbs.flow.osbs_build:
    namespace: osbs
    buildconfig: "{{ bc.name }}"
    git_commit: "{{ source.commit }}"
    wait_timeout: 1800
  register: build

- name: Autorebuild a dependent after its base image changed, adopting the cluster's build
  osbs.flow.osbs_build:
    namespace: osbs
    buildconfig: app-main-1a2b3c4d
    mode: autorebuild
    base_image_digest: "{{ imported.digest }}"
    when_running: wait

- name: A scratch build of a commit, pushed to its own unique tag only
  osbs.flow.osbs_build:
    namespace: osbs
    buildconfig: app-main-1a2b3c4d
    git_commit: "{{ source.commit }}"
    scratch: true
  register: scratch_build

- name: Use the connection set once for the group
  module_defaults:
    group/osbs.flow.openshift:
      kubeconfig: "{{ lookup('env', 'K8S_AUTH_KUBECONFIG') }}"
  block:
    - osbs.flow.osbs_build:
        namespace: osbs
        buildconfig: app-main-1a2b3c4d
        force: true
"""

RETURN = r"""
action:
  description:
    - V(started) when this run started the build; V(existing) when a Complete build for the same commit and
      base image was returned; V(adopted) when a build started by someone else (the cluster's trigger)
      was followed; V(would_start) in check mode.
  returned: always
  type: str
  sample: started
name:
  description: Name of the build.
  returned: a build was started, found or adopted
  type: str
  sample: app-main-1a2b3c4d-3
phase:
  description: Phase of the build when the module returned.
  returned: a build was started, found or adopted
  type: str
  sample: Complete
duration:
  description: How long the build took, in seconds.
  returned: a build was started, found or adopted
  type: float
  sample: 12.5
image_digest:
  description: Digest of the image the build pushed.
  returned: the build is Complete
  type: str
  sample: sha256:3f1e...
image_reference:
  description: Pull spec of the built image by digest.
  returned: the build is Complete
  type: str
  sample: registry.example.com/osbs/app@sha256:3f1e...
output_image:
  description: The pull spec by tag the build pushed to.
  returned: a build was started, found or adopted
  type: str
nvr:
  description:
    - The image's C(name-version-release) (the C(com.redhat.component) label, else the C(name) label with C(/)
      as C(-); a missing version is left out). Unique per build.
  returned: a build was started, found or adopted
  type: str
  sample: containers-app-1.0-3
scratch:
  description: Whether this was a scratch build.
  returned: a build was started, found or adopted
  type: bool
unique_tag:
  description: The tag a scratch build pushed to, the only one it has.
  returned: a scratch build was started
  type: str
  sample: main-20261204190000-1a2b3c4d
release:
  description: The image's C(release) label.
  returned: a build was started, found or adopted
  type: str
  sample: "3"
git_commit:
  description: The commit built.
  returned: a build was started, found or adopted
  type: str
base_image_digest:
  description: Digest of the base image the build used.
  returned: a build was started, found or adopted
  type: str
triggered_by:
  description: The build's C(spec.triggeredBy), what started it.
  returned: a build was started, found or adopted
  type: list
  elements: dict
build:
  description: All of the above in one dictionary (with C(namespace), C(reason), C(message) and C(autorebuild)); null in check mode when a build would start.
  returned: always
  type: dict
msg:
  description: In check mode, what would start and when.
  returned: check mode, when a build would start
  type: str
log_tail:
  description: The end of the build log.
  returned: the build failed
  type: str
"""

from ansible_collections.osbs.flow.plugins.module_utils.build import run_build
from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule


def main():
    argument_spec = dict(
        buildconfig=dict(type="str", required=True, aliases=["name"]),
        namespace=dict(type="str", required=True),
        mode=dict(type="str", choices=["user", "autorebuild"], default="user"),
        git_commit=dict(type="str"),
        from_latest=dict(type="bool", default=False),
        dockerfile_labels=dict(type="dict"),
        scratch=dict(type="bool", default=False),
        base_image_digest=dict(type="str"),
        when_running=dict(type="str", choices=["fail", "wait"], default="fail"),
        force=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        cancel_on_timeout=dict(type="bool", default=False),
    )
    module = OsbsOpenShiftModule(argument_spec=argument_spec, supports_check_mode=True)
    module.require_seconds("wait_timeout", why=" (0 does not wait for the build)")
    module.run(run_build)


if __name__ == "__main__":
    main()
