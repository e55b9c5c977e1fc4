#!/usr/bin/python
# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: osbs_wave_picture
short_description: Draw an autorebuild wave's dependency graph as SVG and as a Markdown summary with Mermaid
version_added: 0.1.0
author:
  - osbs.flow contributors (@osbs-flow)
description:
  - Draws the dependency graph of one autorebuild wave from the rows M(osbs.flow.osbs_autorebuild) returns
    (RV(osbs.flow.osbs_autorebuild#module:rows)). The picture shows the new image the wave started from, each dependent
    as a node showing what happened to it (rebuilt, adopted, unchanged, skipped, failed, blocked), its NVR when the row has one, its build, and
    why it was skipped, failed or was blocked; an edge from each base to each of its dependents.
  - Writes C(<path>.svg), laid out by Graphviz's C(dot), and C(<path>.md), a summary with the same graph as a
    Mermaid block (rendered by GitHub, GitLab and most CI systems) and a table.
  - When C(dot) is missing or fails, only the Markdown summary is written, RV(svg_path) is null and RV(svg_error)
    says why; the module does not fail for a picture.
  - Every name in the graph comes from BuildConfigs and repositories, so nodes are identified by position and every
    label is escaped for DOT, Mermaid and Markdown, so no name can change the graph, the page or the command.
    C(dot) gets the graph on its standard input and only fixed options, and is stopped after 60 seconds.
extends_documentation_fragment:
  - osbs.flow.attributes
options:
  rows:
    description:
      - The wave's rows, RV(osbs.flow.osbs_autorebuild#module:rows) (each with C(image), C(namespace), C(buildconfig), C(action),
        C(parents) and, when known, C(build), C(nvr) and C(reason)).
    type: list
    elements: dict
    required: true
  root:
    description: The ImageStreamTag the wave started from, as V(namespace/stream:tag) (RV(osbs.flow.osbs_autorebuild#module:imagestreamtag)).
    type: str
    required: true
  digest:
    description: The new image's digest, shown on the first node.
    type: str
  path:
    description:
      - Where to write, without the extension; V(.svg) and V(.md) are added. A trailing V(.json) is dropped, so
        the autorebuild report's path can be given as it is and the pictures are written beside it.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; C(changed) says whether a file would change.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A file whose content would not change is not written again.
notes:
  - Needs Graphviz (C(dot) on E(PATH)) on the host the module runs on for the SVG; the Markdown needs nothing.
seealso:
  - module: osbs.flow.osbs_autorebuild
"""

EXAMPLES = r"""
- name: Rebuild the dependents of the new base image
  osbs.flow.osbs_autorebuild:
    namespace: osbs
    imagestreamtag: osbs-base:latest
  register: wave

- name: Draw the wave beside its report
  osbs.flow.osbs_wave_picture:
    rows: "{{ wave.rows }}"
    root: "{{ wave.imagestreamtag }}"
    digest: "{{ wave.digest }}"
    path: /var/tmp/autorebuild-base.json
"""

RETURN = r"""
markdown_path:
  description: The Markdown summary written (or that would be, in check mode).
  returned: always
  type: str
  sample: /var/tmp/autorebuild-base.md
svg_path:
  description: The SVG picture written, or null when there is none (see RV(svg_error)).
  returned: always
  type: str
  sample: /var/tmp/autorebuild-base.svg
svg_error:
  description: Why no SVG was made (no C(dot), or C(dot) failed or timed out), else null.
  returned: always
  type: str
  sample: Graphviz's dot was not found on PATH (Debian/Ubuntu, apt-get install graphviz; RPM, dnf install graphviz)
nodes:
  description: How many dependents the picture shows.
  returned: always
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osbs.flow.plugins.module_utils.wave_picture import write_wave_picture


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rows=dict(type="list", elements="dict", required=True),
            root=dict(type="str", required=True),
            digest=dict(type="str"),
            path=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    base = params["path"][: -len(".json")] if params["path"].endswith(".json") else params["path"]
    try:
        result = write_wave_picture(params["rows"], params["root"], params["digest"], base, module.check_mode)
    except OSError as exc:
        module.fail_json(msg="could not write the wave's picture at %s: %s: check that the directory exists and is writable"
                         % (base, exc))
    if result["svg_error"]:
        module.warn("the wave's SVG picture was not made: %s; the Markdown summary %s has the graph"
                    % (result["svg_error"], result["markdown_path"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
