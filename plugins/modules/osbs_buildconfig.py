#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_buildconfig
short_description: Ensure the OSBS BuildConfig of a git repository and branch
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Ensures the BuildConfig that builds the image of one git repository and branch, the way osbs-client
    kept it (step 2 of the OSBS build process).
  - The BuildConfig has an ImageChange trigger on the ImageStreamTag that tracks the base image, so the
    image is rebuilt when its base image changes; the labels C(is_autorebuild), C(git-repo-name) and
    C(git-branch); the git source at the commit of the last user build; a docker strategy whose C(from) is that ImageStreamTag;
    and an output to the image in the registry, pushed with O(registry_secret).
  - With O(name), that BuildConfig is used (or made) and no other is looked for. Else an existing BuildConfig is
    found first by its C(git-repo-name) label, in each form osbs.flow and osbs-client wrote it, keeping those of
    the same repository and branch. The same repository whatever the spelling of C(spec.source.git.uri) (the
    scheme (C(git://), C(https://), C(ssh://), C(git@host:path)), a user or credentials, the host's case, a default
    port, a trailing C(/) or C(.git) do not count; the path's case does). The branch is, on osbs.flow's own, its
    C(osbs.flow/bump-release) annotation; on osbs-client's, its C(git-branch) label whatever the ref (osbs-client
    0.30 and later put there whatever ref it was given, a commit, C(master) or C(HEAD)), in osbs-client's own
    forms only (the branch as it is up to 0.47; from 0.48, which added C(git-full-repo), with every character
    but C([-a-z0-9.]) dropped, which other branches share, so the BuildConfig's name must also be osbs-client's
    hashed name for this branch); without a label (0.15), its ref. Then by name, osbs.flow's and then each
    osbs-client release's for it (C(<repo>-<branch>) of 0.15, the alternating 53 characters of 0.24, the hashed
    names of 0.38 and 0.48), when its source is the same repository. So every BuildConfig osbs-client made is
    adopted as it is, in place, and no second BuildConfig or second ImageChange trigger is made beside it; the
    ImageChange trigger of a BuildConfig osbs.flow never wrote is its base image's (osbs-client rendered only
    that one), kept when it watches the same ImageStreamTag, else replaced. Two BuildConfigs found are an error
    naming both; so is one that may be this branch's but cannot be told apart from another branch's or
    repository's (a 0.48 label under a name that is not osbs-client's, the same host and path under another port,
    osbs-client's name with a ref that is not the branch), saying to adopt it with O(name) or to give O(name) a
    new name; nothing is written then.
  - What adopting changed is in RV(adopted) and in the diff, every dropped field by name (osbs-client's custom
    strategy, with its C(env) and C(secrets) by name, becomes a docker one; the output, the ref, labels and
    annotations). Adopting a BuildConfig that osbs-client left without an ImageChange trigger (0.41 and later
    removed it when the repository had no C(.osbs-repo-config)) turns its autorebuilds on unless the repository
    disables them, with a warning; a kept C(spec.nodeSelector) is warned about too.
  - What is not ours is kept on update (other labels, annotations, triggers, C(spec.nodeSelector),
    C(spec.resources), the git C(httpProxy), C(httpsProxy) and C(noProxy), a docker strategy's environment,
    C(spec.output.imageLabels), which osbs.flow.osbs_build keeps for each build's identity).
  - The one commit rule. C(spec.source.git.ref) is the commit O(git_commit) names (or the one the BuildConfig
    records), not the branch, as osbs-client 0.30 and later wrote it; the branch is in the C(git-branch)
    label. So every build of the BuildConfig, the ones the cluster's ImageChange trigger starts included,
    builds the commit of the last user build, and an autorebuild never picks up a commit nobody asked to
    build. Without any commit the ref is the branch.
  - The bump_release and stop_autorebuild_if_disabled configurations are kept as the annotations
    C(osbs.flow/bump-release) (JSON with C(git_ref), the commit, and C(git_branch)) and
    C(osbs.flow/stop-autorebuild-if-disabled) (JSON with C(config_file)); C(oc get bc NAME -o yaml) shows them.
  - The C(is_autorebuild) label is set to V(false) when the BuildConfig is created or changed (a user
    build follows); an unchanged BuildConfig keeps the value osbs.flow.osbs_build set after its last user build.
  - When the ImageStream of the base image does not exist, it is created with a tag that imports the
    base image from its registry, so that the trigger has something to watch.
  - While a build of the BuildConfig is New, Pending or Running, a change is refused (or waited for
    with O(when_running=wait)); an unchanged BuildConfig is reported as it is.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - osbs.flow.attributes
  - osbs.flow.attributes.openshift
options:
  name:
    description:
      - Name of the BuildConfig. By default it is derived from O(git_uri) and O(git_branch)
        (C(<repo>-<branch>-<hash>), a DNS-1123 label).
      - Without it, an existing BuildConfig found by its git labels or osbs-client's names keeps its own name.
      - With it, the BuildConfig of that name is the one used (adopted when osbs.flow did not write it), and no
        other is looked for. That is the way to pick one of several, or to make a new one beside one that is not this branch's.
    type: str
  namespace:
    description: Namespace of the BuildConfig.
    type: str
    required: true
  state:
    description:
      - Whether the BuildConfig should exist.
      - V(existing) finds the BuildConfig as V(present) does (adopted ones included) and returns it as it is,
        writing nothing (nor the base image's ImageStream); there being none is an error. The build playbook
        uses it for a scratch build, so the BuildConfig keeps the commit, release and labels of its last user
        build. Of the other options only O(git_uri), O(git_branch), O(name) and O(base_image) (a warning when the
        BuildConfig builds from another one) are used.
    type: str
    choices: [present, absent, existing]
    default: present
  git_uri:
    description: URI of the git repository the image is built from.
    type: str
    required: true
  git_branch:
    description: Branch to build; an empty branch is called C(unknown) in the name and labels, as osbs-client did.
    type: str
    required: true
  git_commit:
    description:
      - The commit of the branch the next user build is from, recorded for bump_release and written as
        C(spec.source.git.ref) (the one commit rule above).
      - A full commit name (40 hexadecimal digits, 64 in a SHA-256 repository); anything else (a branch, a short
        commit, a value starting with C(-)) is refused before anything is written.
      - When not given, the commit the BuildConfig already records is kept.
    type: str
  dockerfile_labels:
    description:
      - The labels the Dockerfile sets at O(git_commit), as osbs.flow.osbs_source_info returns them (C(labels)).
      - Recorded in the annotation C(osbs.flow/dockerfile-labels), so every build of the commit, the cluster's
        and the wave's too, gets only the identity labels the Dockerfile does not set (its own are kept,
        as atomic-reactor's add_labels_in_df kept them), and a Dockerfile's own C(release) is used.
      - When not given, what the BuildConfig records is kept; a new O(git_commit) without them drops it.
    type: dict
  git_source_secret:
    description:
      - Name of a secret in O(namespace) with the credentials to clone a private repository
        (C(spec.source.sourceSecret)). A O(git_uri) with credentials in it is refused.
    type: str
  base_image:
    description:
      - The base image, as the final C(FROM) of the Dockerfile names it.
      - Its ImageStreamTag (registry host dropped, C(/) replaced by C(-), C(:latest) when untagged) is
        the ImageChange trigger and the strategy's C(from).
      - An image pinned by digest cannot be tracked; the BuildConfig then gets no ImageChange trigger
        and the module warns. V(scratch) or no base image gives no trigger either.
    type: str
  base_image_insecure:
    description: Import the base image over plain HTTP or without TLS verification (an insecure registry).
    type: bool
    default: false
  create_base_imagestream:
    description: Create the base image's ImageStream (importing the base image) when it does not exist.
    type: bool
    default: true
  base_image_scheduled_import:
    description:
      - Give the base image's ImageStreamTag C(importPolicy.scheduled=true), so the cluster imports the base image
        again periodically (every 15 minutes by default) and the ImageChange trigger starts a build when it
        changes, with nobody importing it; for base images the flow does not build (a vendor's).
        An existing tag that imports an image by tag is made scheduled too, with an import of it (which brings in
        a newer image if the registry has one, as the first scheduled import would).
      - V(false), OpenShift's default, creates the tag without it and leaves an existing tag's policy as it is,
        since other BuildConfigs share the tag; the playbook osbs.flow.rebuild_dependents's C(scheduled_import)
        sets or clears it.
    type: bool
    default: false
  image:
    description:
      - Repository of the built image in the registry, without registry or tag (the Dockerfile's C(name) label).
      - Required with O(state=present).
    type: str
  image_tag:
    description: Tag the build pushes to.
    type: str
    default: latest
  registry_uri:
    description:
      - The registry the image is pushed to, C(host[:port]), with an optional C(https://) or C(http://) scheme and C(/v2) suffix. A C(/v2) suffix is accepted
        for compatibility; C(/v1) is refused.
      - Required with O(state=present).
    type: str
  registry_secret:
    description:
      - Name of the dockercfg secret in O(namespace) used to push to the registry.
      - It must exist. OpenShift keeps a build whose push secret is missing Pending (reason C(MissingPushSecret))
        rather than failing it, so the module refuses a missing one before writing anything (check mode too).
        Checking needs C(get) on C(secrets); without it the check is skipped with a warning.
    type: str
  dockerfile_path:
    description: Path of the Dockerfile inside the context directory.
    type: str
    default: Dockerfile
  context_dir:
    description: Directory of the repository that holds the build context.
    type: str
  build_args:
    description: Docker build arguments (C(ARG) values).
    type: dict
    default: {}
  no_cache:
    description: Build without the layer cache.
    type: bool
    default: false
  image_optimization_policy:
    description:
      - The docker strategy's C(imageOptimizationPolicy). V(SkipLayers) or V(SkipLayersAndWarn) commit everything the
        Dockerfile adds as one layer on top of the base image's (what atomic-reactor's squash plugin did for OSBS);
        V(None) keeps a layer per step.
      - When not given, the BuildConfig keeps whatever policy it has (OpenShift's default is V(None)).
    type: str
    choices: [None, SkipLayers, SkipLayersAndWarn]
  repo_config_file:
    description: Name of the OSBS repo configuration file that enables or disables autorebuilds.
    type: str
    default: .osbs-repo-config
  autorebuild_enabled:
    description:
      - Whether the repository's repo configuration file enables autorebuilds (as osbs.flow.osbs_source_info
        reads it). With V(false) the ImageChange trigger is paused, so the cluster does not start the builds
        that atomic-reactor's stop_autorebuild_if_disabled would have stopped; with V(true) it is unpaused.
    type: bool
    default: true
  run_policy:
    description: How builds of this BuildConfig are scheduled.
    type: str
    choices: [Serial, Parallel, SerialLatestOnly]
    default: Serial
  labels:
    description: More labels for the BuildConfig; the git labels and C(is_autorebuild) are set by the module.
    type: dict
    default: {}
  when_running:
    description:
      - What to do when a change is needed while a build of the BuildConfig is New, Pending or Running.
      - V(fail) refuses, naming the build and its phase; V(wait) waits for it, up to O(wait_timeout) seconds.
    type: str
    choices: [fail, wait]
    default: fail
  wait_timeout:
    description:
      - How long O(when_running=wait) waits, in seconds. V(0) does not wait, so a running build fails the task as
        with O(when_running=fail). A negative value is refused.
    type: int
    default: 1800
attributes:
  check_mode:
    support: full
    details: Nothing is written; the result and diff show what would change.
  diff_mode:
    support: full
  idempotent:
    support: full
    details: A second run with the same options reports no change and sends no write request.
requirements:
  - kubernetes >= 29.0.0
notes:
  - Connection options come from O(kubeconfig), the C(K8S_AUTH_*) environment variables, or
    C(module_defaults) for the group C(group/osbs.flow.openshift).
seealso:
  - module: osbs.flow.osbs_build
  - module: osbs.flow.reactor_import_image
"""

EXAMPLES = r"""
- name: Ensure the BuildConfig of app at main
  osbs.flow.osbs_buildconfig:
    namespace: osbs
    git_uri: https://git.example.com/containers/app.git
    git_branch: main
    git_commit: 1f0c3a9e5b7d2c4f6a8b0d1e3f5a7c9b1d3e5f70
    base_image: registry.example.com/osbs/base:latest
    image: osbs/app
    registry_uri: registry.example.com/v2
    registry_secret: registry-dockercfg
  register: bc

- name: Ensure it against a cluster, waiting for a running build
  osbs.flow.osbs_buildconfig:
    kubeconfig: ~/.kube/config
    namespace: osbs
    git_uri: https://git.example.com/containers/app.git
    git_branch: main
    git_commit: "{{ commit }}"
    base_image: registry.example.com/osbs/base:latest
    image: osbs/app
    registry_uri: registry.example.com
    registry_secret: registry-dockercfg
    build_args:
      VERSION: "1.2"
    when_running: wait
    wait_timeout: 600

- name: Remove it
  osbs.flow.osbs_buildconfig:
    namespace: osbs
    git_uri: https://git.example.com/containers/app.git
    git_branch: main
    state: absent
"""

RETURN = r"""
name:
  description: Name of the BuildConfig (an adopted one keeps its own name).
  returned: state is present or existing
  type: str
  sample: app-main-1a2b3c4d
buildconfig:
  description: The BuildConfig as the server has it after the change (as it would be, in check mode).
  returned: always
  type: dict
trigger:
  description: The ImageStreamTag of the base image that triggers rebuilds, or null when there is none.
  returned: state is present or existing
  type: str
  sample: osbs-base:latest
base_imagestream_created:
  description: Name of the base image's ImageStream when the module created it (or gave it the tag).
  returned: when created
  type: str
  sample: osbs-base
diff:
  description: Before and after of what changed, in diff mode.
  returned: changed and diff mode
  type: dict
adopted:
  description: A BuildConfig osbs.flow had not written before (osbs-client's, say) that it found and changed.
  returned: changed and the BuildConfig was adopted
  type: dict
  contains:
    name:
      description: Its name, which it keeps.
      type: str
      sample: legacy-v039-main-e1f00
    found_by:
      description: How it was found, by labels or by which name.
      type: str
      sample: labels git-repo-name=legacy-v039,git-branch=main
    changes:
      description: One line per changed field, in check mode too; list items by their names.
      type: list
      elements: str
      sample: ["spec.strategy.customStrategy.env[ATOMIC_REACTOR_PLUGINS] removed (was ...)", "spec.strategy.type: Custom -> Docker"]
    warnings:
      description: What to know beyond the changes (autorebuilds turned on, a kept node selector); also given as warnings.
      type: list
      elements: str
"""

from ansible_collections.osbs.flow.plugins.module_utils.buildconfig import ensure_buildconfig
from ansible_collections.osbs.flow.plugins.module_utils.openshift import OsbsOpenShiftModule


def main():
    argument_spec = dict(
        name=dict(type="str"),
        namespace=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent", "existing"], default="present"),
        git_uri=dict(type="str", required=True),
        git_branch=dict(type="str", required=True),
        git_commit=dict(type="str"),
        dockerfile_labels=dict(type="dict"),
        git_source_secret=dict(type="str", no_log=False),
        base_image=dict(type="str"),
        base_image_insecure=dict(type="bool", default=False),
        create_base_imagestream=dict(type="bool", default=True),
        base_image_scheduled_import=dict(type="bool", default=False),
        image=dict(type="str"),
        image_tag=dict(type="str", default="latest"),
        registry_uri=dict(type="str"),
        registry_secret=dict(type="str", no_log=False),
        dockerfile_path=dict(type="str", default="Dockerfile"),
        context_dir=dict(type="str"),
        build_args=dict(type="dict", default={}),
        no_cache=dict(type="bool", default=False),
        image_optimization_policy=dict(type="str", choices=["None", "SkipLayers", "SkipLayersAndWarn"]),
        repo_config_file=dict(type="str", default=".osbs-repo-config"),
        autorebuild_enabled=dict(type="bool", default=True),
        run_policy=dict(type="str", choices=["Serial", "Parallel", "SerialLatestOnly"], default="Serial"),
        labels=dict(type="dict", default={}),
        when_running=dict(type="str", choices=["fail", "wait"], default="fail"),
        wait_timeout=dict(type="int", default=1800),
    )
    module = OsbsOpenShiftModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ("image", "registry_uri"))],
        supports_check_mode=True,
    )
    module.require_seconds("wait_timeout", why=" (0 does not wait for a running build)")
    module.run(ensure_buildconfig)


if __name__ == "__main__":
    main()
