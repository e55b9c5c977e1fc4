"""Dockerfile handling as OpenShift's docker builder does it: parse instructions and directives, replace the
last FROM with the strategy's image, insert env after every FROM, append build info ENV and LABEL lines,
and tell which images a build pulls."""

from __future__ import annotations

import re
from pathlib import Path

from .process import BuildFailure

DEFAULT_DOCKERFILE = "Dockerfile"
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


def split_instructions(text: str) -> tuple[list[str], list[tuple[int, int, str, str]]]:
    """Split a Dockerfile into lines and instructions (first line, last line, KEYWORD, arguments)."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first, before any instruction or blank line
        match = _DIRECTIVE_RE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)[:1] or "\\"
    instructions = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start, parts = index, []
        while True:
            current = lines[index].rstrip()
            if current.strip().startswith("#") and parts:
                index += 1  # comment lines inside a continued instruction are dropped by the parser
                if index >= len(lines):
                    break
                continue
            if current.endswith(escape) and index + 1 < len(lines):
                parts.append(current[:-1])
                index += 1
                continue
            parts.append(current[:-1] if current.endswith(escape) else current)
            break
        joined = " ".join(part.strip() for part in parts)
        keyword, _, arguments = joined.partition(" ")
        instructions.append((start, index, keyword.upper(), arguments.strip()))
        index += 1
    return lines, instructions


def parse_from(arguments: str) -> tuple[list[str], str, str | None]:
    """FROM arguments -> (flags such as --platform=..., image, stage name or None)."""
    words = arguments.split()
    flags = [word for word in words if word.startswith("--")]
    rest = [word for word in words if not word.startswith("--")]
    image = rest[0] if rest else ""
    stage = rest[2] if len(rest) >= 3 and rest[1].lower() == "as" else None
    return flags, image, stage


def _quote(value: str) -> str:
    # Double quotes keep spaces; escaping $ keeps the value literal (no variable expansion).
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n") + '"'


def prepare_dockerfile(text: str, *, base_image: str | None = None, env: list | None = None,
                       build_env: list | None = None, build_labels: list | None = None) -> str:
    """What OpenShift's docker builder does to the Dockerfile before building.

    base_image replaces the image of the last FROM (the final stage); env is inserted as an ENV
    line after every FROM so RUN steps see it; build_env and build_labels are appended as ENV
    and LABEL lines, recording the build and its source in the image.
    """
    lines, instructions = split_instructions(text)
    froms = [item for item in instructions if item[2] == "FROM"]
    replacements: dict[int, tuple[int, list[str]]] = {}
    for position, (start, end, _, arguments) in enumerate(froms):
        flags, image, stage = parse_from(arguments)
        if base_image and position == len(froms) - 1:
            image = base_image
        new = [" ".join(["FROM", *flags, image] + (["AS", stage] if stage else []))]
        if env:
            new.append("ENV " + " ".join(f"{name}={_quote(value)}" for name, value in env))
        replacements[start] = (end, new)
    result: list[str] = []
    index = 0
    while index < len(lines):
        if index in replacements:
            end, new = replacements[index]
            result.extend(new)
            index = end + 1
        else:
            result.append(lines[index])
            index += 1
    if build_env:
        result.append("ENV " + " ".join(f"{name}={_quote(value)}" for name, value in build_env))
    if build_labels:
        result.append("LABEL " + " ".join(f"{_quote(name)}={_quote(value)}" for name, value in build_labels))
    return "\n".join(result) + "\n"


def from_images(text: str, build_args: list | dict) -> list[str]:
    """The images the FROM lines pull (stage names and scratch left out, ARG defaults and buildArgs applied).

    An image that still holds an unresolved variable is left out: the builder resolves it itself.
    """
    lines, instructions = split_instructions(text)
    values = dict(build_args) if isinstance(build_args, dict) else dict(build_args or [])
    global_args: dict[str, str] = {}
    seen_from, stages, images = False, set(), []
    for _, _, keyword, arguments in instructions:
        if keyword == "ARG" and not seen_from:
            name, has_default, default = arguments.partition("=")
            name = name.strip()
            global_args[name] = values.get(name, default.strip().strip('"\'') if has_default else values.get(name, ""))
        elif keyword == "FROM":
            seen_from = True
            _, image, stage = parse_from(arguments)
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), image)
            if image.lower() != "scratch" and image not in stages and "$" not in image and image not in images:
                images.append(image)
            if stage:
                stages.add(stage)
    return images


def locate_dockerfile(context: Path, dockerfile_path: str | None, source: dict) -> Path:
    relative = (dockerfile_path or DEFAULT_DOCKERFILE).lstrip("/")
    path = (context / relative).resolve()
    if context != path and context not in path.parents:
        raise BuildFailure("ManageDockerfileFailed", f"dockerfilePath {dockerfile_path!r} points outside the build context")
    if source.get("dockerfile") is not None:  # an inline Dockerfile replaces the file in the source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source["dockerfile"])
    if not path.is_file():
        where = f"contextDir {source.get('contextDir')!r}" if source.get("contextDir") else "the repository root"
        raise BuildFailure("ManageDockerfileFailed",
                           f"no Dockerfile at {relative!r} in {where}; check dockerfilePath and contextDir")
    return path
