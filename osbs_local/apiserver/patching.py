"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch is what the kubernetes Python client sends by default.  For OpenShift kinds
the Go types name only a few keyed lists (patchMergeKey tags in openshift/api's types.go); every other list is
replaced whole, exactly like a merge patch.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from . import registration

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
SUPPORTED = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# Keyed lists every kind has: dotted path (with "*" for any map key) -> merge key.  A kind adds its own
# (its Kind.merge_keys) where its Go type names a patchMergeKey.
_COMMON_KEYED = {"metadata.ownerReferences": "uid"}


class PatchError(ValueError):
    """The patch cannot be applied; the API answers 422 (or 400 for an unparsable body)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json patch body must be a list of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(target)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise PatchError(str(exc)) from exc


def strategic_merge_patch(target: Any, patch: Any, resource: str) -> Any:
    keys = dict(_COMMON_KEYED)
    kind = registration.by_plural(resource)
    if kind is not None:
        keys.update(kind.merge_keys)
    return _smp(target, patch, "", keys)


def _smp(target: Any, patch: Any, path: str, keys: dict[str, str]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $retainKeys, $setElementOrder/...: ordering directives, nothing to merge
        child_path = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and child_path in keys:
            result[key] = _merge_keyed_list(result.get(key), value, keys[child_path], child_path, keys)
        else:
            result[key] = _smp(result.get(key), value, child_path, keys)
    return result


def _merge_keyed_list(current: Any, patch_items: list, merge_key: str, path: str, keys: dict[str, str]) -> list:
    merged = copy.deepcopy(current) if isinstance(current, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch_items):
        return [copy.deepcopy(i) for i in patch_items if not (isinstance(i, dict) and "$patch" in i)]
    for item in patch_items:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"{path}: every item of a strategic merge list needs the key {merge_key!r}")
        index = next(
            (n for n, old in enumerate(merged) if isinstance(old, dict) and old.get(merge_key) == item[merge_key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
            continue
        if index is None:
            merged.append({k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("$")})
        else:
            merged[index] = _smp(merged[index], item, path, keys)
    return merged


def apply_patch(content_type: str, target: dict, body: Any, resource: str) -> dict:
    """Apply a PATCH body of the given media type to a copy of target."""
    if content_type == JSON_PATCH:
        result = json_patch(target, body)
    elif content_type in (MERGE_PATCH, APPLY_PATCH):
        if not isinstance(body, dict):
            raise PatchError("a merge patch body must be a JSON object")
        result = merge_patch(target, body)
    elif content_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(body, dict):
            raise PatchError("a strategic merge patch body must be a JSON object")
        result = strategic_merge_patch(target, body, resource)
    else:
        raise ValueError(content_type)
    if not isinstance(result, dict):
        raise PatchError("the patched object is not a JSON object")
    return result
