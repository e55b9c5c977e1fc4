"""What BuildConfig and Build share: their labels and annotations, phases, spec defaults and validation."""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Optional

from ...apiserver.errors import Cause

RUN_POLICIES = ("Serial", "Parallel", "SerialLatestOnly")
IMAGE_OPTIMIZATION_POLICIES = ("None", "SkipLayers", "SkipLayersAndWarn")
TERMINAL_PHASES = ("Complete", "Failed", "Error", "Cancelled")
ACTIVE_PHASES = ("New", "Pending", "Running")
PAUSED_ANNOTATION = "openshift.io/build-config.paused"
BUILD_NUMBER_ANNOTATION = "openshift.io/build.number"
BUILD_CONFIG_LABEL = "openshift.io/build-config.name"
DEPRECATED_BUILD_CONFIG_LABEL = "buildconfig"
START_POLICY_LABEL = "openshift.io/build.start-policy"
POD_NAME_ANNOTATION = "openshift.io/build.pod-name"
TRIGGER_TYPES = ("GitHub", "Generic", "GitLab", "Bitbucket", "ImageChange", "ConfigChange")
# v1 type names older clients still send; conversion renames them (OAS v1/conversion.go
# Convert_v1_BuildTriggerPolicy_To_build_BuildTriggerPolicy).
DEPRECATED_TRIGGER_TYPES = {"imageChange": "ImageChange", "generic": "Generic", "github": "GitHub"}
LABEL_VALUE_MAX_LENGTH = 63
_QUALIFIED_NAME_PART = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile("^" + _QUALIFIED_NAME_PART + "$")
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
WEBHOOK_FIELDS = {"GitHub": "github", "Generic": "generic", "GitLab": "gitlab", "Bitbucket": "bitbucket"}
STRATEGY_FIELDS = {
    "dockerStrategy": "Docker",
    "sourceStrategy": "Source",
    "customStrategy": "Custom",
    "jenkinsPipelineStrategy": "JenkinsPipeline",
}


def strategy_from(spec: dict) -> Optional[dict]:
    """The base image reference of the strategy (`from`), whatever the strategy type."""
    strategy = spec.get("strategy") or {}
    for field in ("dockerStrategy", "sourceStrategy", "customStrategy"):
        if isinstance(strategy.get(field), dict):
            return strategy[field].get("from")
    return None


def strategy_body(spec: dict) -> Optional[dict]:
    strategy = spec.get("strategy") or {}
    for field in ("dockerStrategy", "sourceStrategy", "customStrategy"):
        if isinstance(strategy.get(field), dict):
            return strategy[field]
    return None


def image_change_from(bc: dict, trigger: dict, namespace: str) -> Optional[dict]:
    """The ImageStreamTag an ImageChange trigger watches (its own from, else the strategy's), or None."""
    image_change = trigger.get("imageChange") or {}
    source = image_change.get("from") or strategy_from(bc.get("spec", {}))
    if not source or source.get("kind") != "ImageStreamTag" or not source.get("name"):
        return None
    return {"kind": "ImageStreamTag", "name": source["name"], "namespace": source.get("namespace") or namespace}


def is_valid_label_value(value: str) -> bool:
    """apimachinery validation.IsValidLabelValue: at most 63 characters, alphanumeric at both ends."""
    return len(value) <= LABEL_VALUE_MAX_LENGTH and bool(_LABEL_VALUE_RE.match(value))


def label_value(name: str) -> str:
    """The BuildConfig name as a Build's label value: shortened from the end until it is valid (OAS generator.go labelValue)."""
    for end in range(len(name), 0, -1):
        if is_valid_label_value(name[:end]):
            return name[:end]
    return name


def clean_path(path: str) -> str:
    """Go's path.Clean, which OpenShift's validation applies (posixpath.normpath keeps a leading `//`)."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _clean_relative_paths(spec: dict, path: str) -> list[Cause]:
    """Store dockerfilePath and contextDir cleaned, `.` as unset; refuse those leaving the repository.

    OpenShift does this in validation, on every create and update of a BuildConfig or a Build
    (OAS validation.go validateDockerStrategy/validateRelativePath and validateSource).
    """
    causes = []
    docker = (spec.get("strategy") or {}).get("dockerStrategy")
    dockerfile_path = docker.get("dockerfilePath") if isinstance(docker, dict) else None
    if isinstance(dockerfile_path, str) and dockerfile_path:
        cleaned = clean_path(dockerfile_path)
        if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
            causes.append(Cause(f"{path}.strategy.dockerStrategy.dockerfilePath", "FieldValueInvalid",
                                f"{dockerfile_path!r}: dockerfilePath must be a relative path within your source location"))
        elif cleaned == ".":
            del docker["dockerfilePath"]
        else:
            docker["dockerfilePath"] = cleaned
    source = spec.get("source")
    context_dir = source.get("contextDir") if isinstance(source, dict) else None
    if isinstance(context_dir, str) and context_dir:
        cleaned = clean_path(context_dir)
        if cleaned.startswith(".."):  # OpenShift's own test: `..name` is refused too
            causes.append(Cause(f"{path}.source.contextDir", "FieldValueInvalid",
                                f"{context_dir!r}: context dir must not be a relative path"))
        elif cleaned == ".":
            del source["contextDir"]
        else:
            source["contextDir"] = cleaned
    return causes


def common_spec_defaults(spec: dict) -> None:
    source = spec.get("source")
    if isinstance(source, dict):
        if source.get("git"):
            source["type"] = "Git"
        elif source.get("dockerfile") is not None:
            source["type"] = "Dockerfile"
        elif source.get("binary") is not None:
            source["type"] = "Binary"
        elif source.get("images"):
            source["type"] = "Image"
        else:
            source.setdefault("type", "None")
    strategy = spec.get("strategy")
    if isinstance(strategy, dict):
        for field, strategy_type in STRATEGY_FIELDS.items():
            if isinstance(strategy.get(field), dict):
                strategy["type"] = strategy_type
                body = strategy[field]
                if isinstance(body.get("from"), dict) and not body["from"].get("kind"):
                    body["from"]["kind"] = "ImageStreamTag"
                break
    output = spec.get("output")
    if isinstance(output, dict) and isinstance(output.get("to"), dict):
        to = output["to"]
        if to.get("kind") in (None, "", "ImageStream"):
            to["kind"] = "ImageStreamTag"
            if to.get("name") and ":" not in to["name"]:
                to["name"] = f"{to['name']}:latest"
    spec.setdefault("resources", {})
    spec.setdefault("postCommit", {})
    spec.setdefault("nodeSelector", None)
    spec.setdefault("output", {})


def validate_common_spec(spec: dict, path: str = "spec") -> list[Cause]:
    causes = []
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict) or not any(isinstance(strategy.get(f), dict) for f in STRATEGY_FIELDS):
        causes.append(Cause(f"{path}.strategy", "FieldValueRequired", "must provide a value for exactly one of sourceStrategy, customStrategy, dockerStrategy, or jenkinsPipelineStrategy"))
    else:
        body = strategy_body(spec) or {}
        source_from = body.get("from")
        if isinstance(source_from, dict):
            kind = source_from.get("kind")
            if kind not in ("ImageStreamTag", "DockerImage", "ImageStreamImage"):
                causes.append(Cause(f"{path}.strategy.from.kind", "FieldValueInvalid", f"{kind!r}: kind must be one of ImageStreamTag, ImageStreamImage, DockerImage"))
            elif not source_from.get("name"):
                causes.append(Cause(f"{path}.strategy.from.name", "FieldValueRequired", "name is required"))
            elif kind == "ImageStreamTag" and ":" not in source_from["name"]:
                causes.append(Cause(f"{path}.strategy.from.name", "FieldValueInvalid", f"{source_from['name']!r}: ImageStreamTag object references must be in the form <name>:<tag>"))
        policy = (strategy.get("dockerStrategy") or {}).get("imageOptimizationPolicy")
        if policy is not None and policy not in IMAGE_OPTIMIZATION_POLICIES:
            causes.append(Cause(f"{path}.strategy.dockerStrategy.imageOptimizationPolicy", "FieldValueInvalid",
                                f"{policy!r}: must be unset, 'None', 'SkipLayers', or 'SkipLayersAndWarn'"))
    source = spec.get("source") or {}
    git = source.get("git")
    if git is not None and (not isinstance(git, dict) or not git.get("uri")):
        causes.append(Cause(f"{path}.source.git.uri", "FieldValueRequired", "must provide a uri"))
    causes.extend(_clean_relative_paths(spec, path))
    causes.extend(_image_label_causes((spec.get("output") or {}).get("imageLabels"), path))
    to = (spec.get("output") or {}).get("to")
    if isinstance(to, dict):
        if to.get("kind") not in ("ImageStreamTag", "DockerImage"):
            causes.append(Cause(f"{path}.output.to.kind", "FieldValueInvalid", f"{to.get('kind')!r}: kind must be one of ImageStreamTag or DockerImage"))
        elif not to.get("name"):
            causes.append(Cause(f"{path}.output.to.name", "FieldValueRequired", "name is required"))
    return causes


def qualified_name_problems(value: str) -> list[str]:
    """apimachinery validation.IsQualifiedName: `[prefix/]name`, name at most 63 characters, prefix a DNS-1123 subdomain."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
                f"is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"]
    problems = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        elif len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix):
            problems.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                            "characters, '-' or '.', and must start and end with an alphanumeric character")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.match(name):
        problems.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                        "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                        f"validation is '{_QUALIFIED_NAME_PART}')")
    return problems


def _image_label_causes(labels, path: str) -> list[Cause]:
    """OAS validation.go ValidateImageLabels: each name required and qualified, then each name once."""
    causes = []
    labels = labels if isinstance(labels, list) else []
    for index, label in enumerate(labels):
        name = (label or {}).get("name") if isinstance(label, dict) else None
        field = f"{path}.output.imageLabels[{index}].name"
        if not name:
            causes.append(Cause(field, "FieldValueRequired", "Required value"))
        elif qualified_name_problems(name):
            causes.append(Cause(field, "FieldValueInvalid", f"Invalid value: {name!r}: " + "; ".join(qualified_name_problems(name))))
    seen = set()
    for index, label in enumerate(labels):
        name = (label or {}).get("name") if isinstance(label, dict) else None
        if name in seen:
            causes.append(Cause(f"{path}.output.imageLabels[{index}].name", "FieldValueInvalid", f"Invalid value: {name!r}: duplicate name"))
        seen.add(name)
    return causes


def build_name(bc_name: str, number: int) -> str:
    """`<bc>-<n>`; over-long names are shortened with a hash like library-go's namer."""
    name = f"{bc_name}-{number}"
    if len(name) <= 253:
        return name
    digest = hashlib.new("fnv1a_32", name.encode()).hexdigest() if "fnv1a_32" in hashlib.algorithms_available else hashlib.sha1(name.encode()).hexdigest()[:8]
    suffix = f"-{number}"
    return f"{bc_name[: 253 - len(suffix) - 9]}-{digest[:8]}{suffix}"


def strategy_type(obj: dict) -> str:
    """The Type column of `oc get bc` and `oc get builds`."""
    return ((obj.get("spec") or {}).get("strategy") or {}).get("type", "")


def source_label(obj: dict) -> str:
    """The From column of `oc get bc` and `oc get builds`: Git@commit, Git@ref, or the source type."""
    spec = obj.get("spec") or {}
    source = spec.get("source") or {}
    if source.get("git"):
        label = "Git"
        commit = (((spec.get("revision") or {}).get("git")) or {}).get("commit")
        if commit:
            return f"{label}@{commit[:7]}"
        ref = source["git"].get("ref")
        return f"{label}@{ref}" if ref else label
    return source.get("type", "")
