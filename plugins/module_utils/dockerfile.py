# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the flow reads from a Dockerfile: the base image and the image name.

Parsed with dockerfile-parse, the library OSBS itself uses. The image name
comes from the `name` label; `com.redhat.component` is not a fallback, since it
names the dist-git component rather than the image (OSBS required `name`).
"""

from __future__ import annotations

import io
import traceback

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.images import check_repository

try:
    from dockerfile_parse import DockerfileParser
except ImportError:
    DockerfileParser = None
    DOCKERFILE_PARSE_IMPORT_ERROR = traceback.format_exc()
else:
    DOCKERFILE_PARSE_IMPORT_ERROR = None

NAME_LABEL = "name"


def read_dockerfile(content, build_args=None, filename="Dockerfile"):
    """Return {'base_image', 'image_name', 'labels', 'stages'} of the Dockerfile's text.

    The base image is the final stage's parent with ARG values substituted; a
    final stage `FROM <earlier stage>` is followed back to that stage's image.
    """
    parser, final_base, from_values = _parse(content, build_args, filename)
    labels = parser.labels
    image_name = labels.get(NAME_LABEL)
    if not image_name:
        raise OsbsFlowError(
            "%s has no %r label in its final stage: add LABEL name=\"<namespace>/<image>\" naming the image to build"
            % (filename, NAME_LABEL)
        )
    # Found now, before any object is written, rather than when the push fails.
    check_repository(image_name, "%s: the %r label" % (filename, NAME_LABEL),
                     fix="change the Dockerfile's LABEL %s to the image's repository path, for example "
                         "LABEL name=\"containers/app\"" % NAME_LABEL)
    return {
        "base_image": final_base,
        "image_name": image_name,
        "labels": labels,
        "stages": len(from_values),
    }


def base_image(content, build_args=None, filename="Dockerfile"):
    """The base image of the Dockerfile's text (read_dockerfile's), whatever its labels."""
    return _parse(content, build_args, filename)[1]


def _parse(content, build_args, filename):
    """(the parser, the final stage's base image, the FROM values) of the Dockerfile's text."""
    if DockerfileParser is None:
        raise OsbsFlowError("reading %s needs the Python library dockerfile-parse: pip install dockerfile-parse" % filename)
    if isinstance(content, str):
        content = content.encode("utf-8")
    parser = DockerfileParser(fileobj=io.BytesIO(content), build_args=dict(build_args or {}))
    from_values = [item["value"] for item in parser.structure if item["instruction"] == "FROM"]
    if not from_values:
        raise OsbsFlowError("%s has no FROM instruction: add one naming the base image, for example FROM registry.example.com/base:1" % filename)

    parents = parser.parent_images
    aliases = {}
    for index, value in enumerate(from_values):
        words = value.split()
        if len(words) >= 3 and words[-2].lower() == "as":
            aliases[words[-1].lower()] = index
    final_base = parents[-1]
    seen = set()
    while final_base.lower() in aliases and final_base.lower() not in seen:
        seen.add(final_base.lower())
        final_base = parents[aliases[final_base.lower()]]
    if not final_base or "$" in final_base:
        raise OsbsFlowError(
            "%s: the base image %r has an unresolved variable: give a default in its ARG "
            "or pass the value in build_args" % (filename, from_values[-1].split()[0])
        )
    return parser, final_base, from_values
