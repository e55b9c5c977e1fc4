"""Every failure of a request is an ApiError, rendered as a `kind: Status` body with its code and reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .resource import Resource


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Optional[dict] = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def status_details(resource: Resource, name: str) -> dict:
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified_plural} "{name}" not found', status_details(resource, name))


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{resource.qualified_plural} "{name}" already exists', status_details(resource, name)
    )


def conflict(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": the object has been modified;'
        " please apply your changes to the latest version and try again",
        status_details(resource, name),
    )


@dataclass
class Cause:
    field: str
    reason: str  # FieldValueRequired | FieldValueInvalid | FieldValueDuplicate | FieldValueNotSupported | ...
    message: str


_CAUSE_WORDS = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
}


def invalid(kind_qualified: str, name: str, causes: list[Cause], group: str = "", kind: str = "") -> ApiError:
    text = ", ".join(f"{c.field}: {_CAUSE_WORDS.get(c.reason, c.reason)}: {c.message}" for c in causes)
    details = {
        "name": name,
        "kind": kind or kind_qualified.split(".")[0],
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    if group:
        details["group"] = group
    message = f'{kind_qualified} "{name}" is invalid: {text}' if len(causes) == 1 else (
        f'{kind_qualified} "{name}" is invalid: [{text}]'
    )
    return ApiError(422, "Invalid", message, details)


def invalid_object(resource: Resource, name: str, causes: list[Cause]) -> ApiError:
    return invalid(resource.qualified_kind, name, causes, resource.group, resource.kind)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(verb: str, resource: Resource) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f'{verb} is not supported on resources of kind "{resource.qualified_plural}"'
    )


def success_status(resource: Resource, name: str, uid: str) -> dict:
    details = status_details(resource, name)
    details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
