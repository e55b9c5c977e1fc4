"""What a failing build tool printed, told as an OpenShift failure reason and a message for a person."""

from __future__ import annotations

import re

from .process import BuildFailure

_STEP_RE = re.compile(r"^(?:STEP \d+(?:/\d+)?: |Step \d+/\d+ : )(.*)$")


def last_step(lines: list[str]) -> str | None:
    for line in reversed(lines):
        match = _STEP_RE.match(line.strip())
        if match:
            return match.group(1)
    return None


def registry_problem(text: str, host: str) -> str:
    """A short cause for a registry failure, from what the tool printed."""
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        return f"registry {host} refused the credentials (unauthorized); check the secret for {host}"
    if "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered:
        return "image not found in the registry; check the name and tag"
    if "x509" in lowered or "certificate" in lowered or "tls" in lowered and "handshake" in lowered:
        return f"TLS verification of registry {host} failed; the registry's CA is not trusted"
    if "connection refused" in lowered or "no such host" in lowered or "i/o timeout" in lowered or "connect:" in lowered:
        return f"cannot reach registry {host}; check that it runs and the address is right"
    return "see the build log"


def last_error_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.lower().startswith(("error", "fatal")) or "error:" in line.lower():
            return line.strip()
    return lines[-1].strip() if lines else ""


def build_failure(lines: list[str]) -> BuildFailure:
    text = "\n".join(lines)
    step = last_step(lines)
    error = last_error_line(lines)
    if step and step.upper().startswith("FROM") and re.search(r"pull|manifest|unauthorized|initializing source", text, re.I):
        return BuildFailure("PullBuilderImageFailed", f"cannot pull the image of step {step!r}: {error}")
    exit_status = re.search(r"(?:exit status|returned a non-zero code:) (\d+)", error)
    if step and exit_status:
        return BuildFailure("DockerBuildFailed", f"the Dockerfile step {step!r} failed with exit status {exit_status.group(1)}")
    if step:
        return BuildFailure("DockerBuildFailed", f"the Dockerfile step {step!r} failed: {error}")
    return BuildFailure("DockerBuildFailed", f"the image build failed: {error}")
