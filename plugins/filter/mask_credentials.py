# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mask_credentials
author: osbs.flow contributors
version_added: 0.1.0
short_description: Hide the user info of every URI in a text
description:
  - Replaces the user info (C(user:password@), C(token@)) of every URI in the text with C(***@), so that a play name,
    a task name or a message can show a git URI, a registry URI or a Pulp URL without the credentials it may carry.
  - A user name alone in an C(ssh://) URI (C(ssh://git@host/repo.git)) names an account, not a secret, and stays
    readable; an C(http) or C(https) user alone is often a token and is hidden.
  - An scp-like C(user:password@host:path) is hidden too.
  - Lists and dictionaries are masked item by item (their keys are left as they are); other values are returned
    unchanged.
  - This is the masking the collection's modules apply to their own results and messages.
positional: _input
options:
  _input:
    description: The text to mask, or a list or dictionary of texts.
    type: raw
    required: true
seealso:
  - module: osbs.flow.osbs_source_info
"""

EXAMPLES = r"""
- name: Build {{ git_uri | osbs.flow.mask_credentials }}
  ansible.builtin.debug:
    msg: "{{ 'cloning https://builder:s3cret@git.example.com/app.git' | osbs.flow.mask_credentials }}"
  # => "cloning https://***@git.example.com/app.git"

- name: Show the report with every URI in it masked
  ansible.builtin.debug:
    msg: "{{ report_lines | osbs.flow.mask_credentials }}"
"""

RETURN = r"""
_value:
  description:
    - The input with the user info of every URI in it shown as C(***).
    - A list for a list, a dictionary for a dictionary.
  type: raw
"""

from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials_in


class FilterModule:
    def filters(self):
        return {"mask_credentials": mask_credentials_in}
