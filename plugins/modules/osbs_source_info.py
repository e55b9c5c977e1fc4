#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_source_info
short_description: Read what the OSBS flow needs from a git checkout
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Reads step 1 of the OSBS flow from a checked-out repository. The Dockerfile gives the base image
    (the final stage's C(FROM), with C(ARG) values substituted and stage aliases followed) and the image
    name (its C(name) label). The OSBS repo configuration file gives whether autorebuilds are enabled.
  - A missing Dockerfile, C(FROM) or C(name) label, or a malformed repo configuration file, fails with a
    message naming the file and what to fix.
extends_documentation_fragment:
  - osbs.flow.attributes
options:
  path:
    description: The checkout (the repository's top level).
    type: path
    required: true
  context_dir:
    description: Directory of the repository that holds the build context and the Dockerfile.
    type: str
  dockerfile_path:
    description: Path of the Dockerfile inside the context directory.
    type: str
    default: Dockerfile
  build_args:
    description: Values for the Dockerfile's C(ARG)s.
    type: dict
    default: {}
  repo_config_file:
    description: Name of the OSBS repo configuration file, at the top level of the repository.
    type: str
    default: .osbs-repo-config
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: N/A
    details: The module only reads.
  idempotent:
    support: full
    details: The module only reads.
requirements:
  - dockerfile-parse >= 2.0
seealso:
  - module: osbs.flow.osbs_buildconfig
"""

EXAMPLES = r"""
- name: Check out the repository
  ansible.builtin.git:
    repo: https://git.example.com/containers/app.git
    version: main
    dest: /var/tmp/osbs/app
  register: checkout

- name: Read the Dockerfile and .osbs-repo-config
  osbs.flow.osbs_source_info:
    path: /var/tmp/osbs/app
  register: source
"""

RETURN = r"""
base_image:
  description: The base image of the final stage.
  returned: success
  type: str
  sample: registry.example.com/osbs/base:latest
image_name:
  description: The Dockerfile's C(name) label, the image's repository.
  returned: success
  type: str
  sample: osbs/app
labels:
  description: All labels of the final stage.
  returned: success
  type: dict
autorebuild_enabled:
  description: Whether the repo configuration enables autorebuilds (true when the file, section or key is absent).
  returned: success
  type: bool
repo_config_present:
  description: Whether the repo configuration file exists.
  returned: success
  type: bool
dockerfile:
  description: Path of the Dockerfile read.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.osbs.flow.plugins.module_utils.dockerfile import DOCKERFILE_PARSE_IMPORT_ERROR, read_dockerfile
from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.repo_config import parse_repo_config


def read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            context_dir=dict(type="str"),
            dockerfile_path=dict(type="str", default="Dockerfile"),
            build_args=dict(type="dict", default={}),
            repo_config_file=dict(type="str", default=".osbs-repo-config"),
        ),
        supports_check_mode=True,
    )
    if DOCKERFILE_PARSE_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("dockerfile-parse"), exception=DOCKERFILE_PARSE_IMPORT_ERROR)
    params = module.params
    context = os.path.join(params["path"], params["context_dir"] or "")
    dockerfile = os.path.normpath(os.path.join(context, params["dockerfile_path"]))
    repo_config = os.path.join(params["path"], params["repo_config_file"])
    if not os.path.isfile(dockerfile):
        module.fail_json(msg="%s does not exist: check dockerfile_path and context_dir, or add the Dockerfile to the repository" % dockerfile)
    try:
        content = read_dockerfile(read_text(dockerfile), params["build_args"], filename=dockerfile)
        present = os.path.isfile(repo_config)
        config = parse_repo_config(read_text(repo_config) if present else None, filename=repo_config)
    except OsbsFlowError as exc:
        module.fail_json(msg=to_text(exc))
    module.exit_json(
        changed=False,
        base_image=content["base_image"],
        image_name=content["image_name"],
        labels=content["labels"],
        autorebuild_enabled=config["autorebuild_enabled"],
        repo_config_present=present,
        dockerfile=dockerfile,
    )


if __name__ == "__main__":
    main()
