#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pulp_sync
short_description: Sync an image repository from a container registry into Pulp 3
version_added: 0.1.0
description:
  - Moves a v2 image repository from a distribution registry into Pulp the way OSBS did after a build,
    with today's Pulp 3 and its C(pulp_container) plugin, through C(pulp-glue).
  - Ensures a container remote pointing at O(registry_uri) and O(repository) (updated when its URL, upstream
    name, tags, TLS settings or registry credentials change), a container repository and a container
    distribution, then syncs the remote into the repository. The distribution serves the repository's
    latest version from Pulp's registry API.
  - Pulp never returns a remote's password, so the module keeps a salted PBKDF2 hash of the registry
    credentials in the remote's C(pulp_labels) (key C(osbs.flow.credentials)) and compares that; unchanged
    credentials do not make a run changed.
  - The Pulp objects are named C(<name>/<repository>) where C(<name>) is O(pulp_sync_registry_name), or
    O(pulp_registry_name) when that is not given; the distribution's base path is the same string.
options:
  pulp_url:
    description:
      - URL of the Pulp API server, for example C(https://pulp.example.com).
      - If not set, the value of the E(PULP_URL) environment variable is used.
    type: str
    required: true
  username:
    description:
      - Pulp user.
      - If not set, the value of the E(PULP_USERNAME) environment variable is used.
    type: str
    required: true
  password:
    description:
      - Password of the Pulp user.
      - If not set, the value of the E(PULP_PASSWORD) environment variable is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify Pulp's TLS certificate.
      - If not set, the value of the E(PULP_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  ca_cert:
    description:
      - CA bundle (PEM) to verify Pulp's certificate with.
      - If not set, the value of the E(PULP_CA_BUNDLE) environment variable is used.
    type: path
    aliases: [ca_path]
  timeout:
    description:
      - Seconds to wait for each Pulp task (the sync, distribution changes); at least V(1).
    type: int
    default: 300
  registry_uri:
    description:
      - The source registry as V(host[:port]), optionally with a scheme and a V(/v2) suffix
        (kept for OSBS configurations; v2 is the only registry API). V(/v1) is an error.
      - V(http://) means a registry without TLS; no scheme means V(https://).
    type: str
    required: true
  repository:
    description:
      - The image repository in the source registry, for example V(osbs/my-image).
    type: str
    required: true
  tags:
    description:
      - The tags to sync (C(*) and C(?) wildcards allowed). All tags when not given.
      - The module fails when a tag named without wildcards is not in the registry after the sync.
    type: list
    elements: str
  registry_dockercfg_path:
    description:
      - A C(.dockercfg) or C(config.json)/C(auth.json) file holding the source registry's credentials;
        the entry for the O(registry_uri) host is used.
    type: path
  registry_username:
    description:
      - User for the source registry, given to Pulp for the sync.
    type: str
  registry_password:
    description:
      - Password for the source registry.
    type: str
  registry_ca_cert:
    description:
      - CA certificate (PEM file) Pulp uses to verify the source registry's TLS certificate.
    type: path
  registry_validate_certs:
    description:
      - Whether Pulp verifies the source registry's TLS certificate. Ignored for V(http://).
    type: bool
    default: true
  pulp_registry_name:
    description:
      - Names the Pulp side, for example V(stage-pulp); prefixes the Pulp remote, repository and
        distribution names and the base path.
      - One of O(pulp_registry_name) and O(pulp_sync_registry_name) is required.
    type: str
  pulp_sync_registry_name:
    description:
      - Names where the sync goes; falls back to O(pulp_registry_name) when not given (as the OSBS
        design document promised).
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - No POST, PUT, PATCH or DELETE request reaches Pulp in check mode.
      - Pulp has no dry-run sync, so check mode assumes nothing new upstream when remote, repository and
        distribution already exist.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Before and after of the remote (credentials shown as set/unset only), the repository (latest
        version) and the distribution.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation
        indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
    details:
      - A second run is changed only when the source registry has new content for the synced tags.
  action_group:
    description: Use C(group/osbs.flow.pulp) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - osbs.flow.pulp
requirements:
  - pulp-glue >= 0.41, < 0.42
  - Pulp 3 (pulpcore 3.x) with the pulp_container plugin 2.30 or later (the remote's C(includes) field; tested with
    pulpcore 3.123.1 and pulp_container 2.30.0)
notes:
  - The pull spec points at Pulp's registry API, which pulp_container serves on the API server's host and port.
seealso:
  - name: pulp_container
    description: The Pulp plugin for container images.
    link: https://pulpproject.org/pulp_container/
author:
  - osbs.flow contributors (@osbs-flow)
"""

EXAMPLES = r"""
- name: Sync the image just built into Pulp
  osbs.flow.pulp_sync:
    pulp_url: https://pulp.example.com
    username: admin
    password: "{{ pulp_password }}"
    registry_uri: registry.example.com/v2
    repository: osbs/my-image
    tags: ["1.0-3", latest]
    registry_dockercfg_path: /run/secrets/registry/.dockercfg
    pulp_registry_name: stage-pulp
  register: pulp

- name: Show where the image can be pulled from Pulp
  ansible.builtin.debug:
    msg: "{{ pulp.tags | map(attribute='pull_spec_by_digest') | list }}"

- name: Connection from the environment (PULP_URL, PULP_USERNAME, PULP_PASSWORD, PULP_CA_BUNDLE)
  module_defaults:
    group/osbs.flow.pulp:
      validate_certs: true
  osbs.flow.pulp_sync:
    registry_uri: http://127.0.0.1:5000
    repository: osbs/base
    pulp_registry_name: stage-pulp
    pulp_sync_registry_name: prod-pulp
"""

RETURN = r"""
repository_version:
  description: Number of the Pulp repository's latest version after the sync (V(0) = empty).
  returned: success
  type: int
  sample: 2
repository_version_href:
  description: API href of that repository version.
  returned: success
  type: str
  sample: /pulp/api/v3/repositories/container/container/0195.../versions/2/
repository_href:
  description: API href of the Pulp repository (null in check mode when it does not exist yet).
  returned: success
  type: str
remote_href:
  description: API href of the Pulp container remote (null in check mode when it does not exist yet).
  returned: success
  type: str
distribution_href:
  description: API href of the Pulp container distribution (null in check mode when it does not exist yet).
  returned: success
  type: str
names:
  description: The names used on the Pulp side.
  returned: success
  type: dict
  contains:
    registry_name:
      description: O(pulp_sync_registry_name), or O(pulp_registry_name) when that was not given.
      type: str
      sample: stage-pulp
    name:
      description: Name of the remote, the repository and the distribution.
      type: str
      sample: stage-pulp/osbs/my-image
    base_path:
      description: Base path of the distribution.
      type: str
      sample: stage-pulp/osbs/my-image
base_path:
  description: The distribution's base path.
  returned: success
  type: str
  sample: stage-pulp/osbs/my-image
pull_spec:
  description: The repository in Pulp's registry, without tag.
  returned: success
  type: str
  sample: pulp.example.com/stage-pulp/osbs/my-image
tags:
  description: The synced tags (O(tags), or all tags of the repository version) with their manifest digests.
  returned: success
  type: list
  elements: dict
  contains:
    tag:
      description: Tag name.
      type: str
      sample: latest
    digest:
      description: Digest of the tagged manifest (or manifest list) in Pulp, the same as in the source registry.
      type: str
      sample: sha256:3f1e...
    pull_spec:
      description: Pull spec by tag from Pulp's registry.
      type: str
      sample: pulp.example.com/stage-pulp/osbs/my-image:latest
    pull_spec_by_digest:
      description: Pull spec by digest from Pulp's registry.
      type: str
      sample: pulp.example.com/stage-pulp/osbs/my-image@sha256:3f1e...
diff:
  description: Before and after of remote, repository and distribution, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.osbs.flow.plugins.module_utils.pulp import PulpModule
from ansible_collections.osbs.flow.plugins.module_utils.pulp_sync import sync_to_pulp


def main():
    with PulpModule(
        argument_spec=dict(
            registry_uri=dict(type="str", required=True),
            repository=dict(type="str", required=True),
            tags=dict(type="list", elements="str"),
            registry_dockercfg_path=dict(type="path"),
            registry_username=dict(type="str"),
            registry_password=dict(type="str", no_log=True),
            registry_ca_cert=dict(type="path"),
            registry_validate_certs=dict(type="bool", default=True),
            pulp_registry_name=dict(type="str"),
            pulp_sync_registry_name=dict(type="str"),
        ),
        required_one_of=[("pulp_registry_name", "pulp_sync_registry_name")],
        mutually_exclusive=[
            ("registry_dockercfg_path", "registry_username"),
            ("registry_dockercfg_path", "registry_password"),
        ],
        required_together=[("registry_username", "registry_password")],
    ) as module:
        module.exit_with(sync_to_pulp(module.pulp_ctx, module.params, module.check_mode))


if __name__ == "__main__":
    main()
