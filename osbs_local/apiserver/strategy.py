"""Per-kind rules of the generic store: defaults, server-owned fields, validation, and what DELETE does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .errors import Cause

if TYPE_CHECKING:
    from .api import Api
    from .resource import Resource


class Strategy:
    """Per-kind rules; the defaults fit ConfigMap-like kinds without spec/status or generation."""

    has_generation = False
    require_rv_on_update = False

    def prepare_create(self, api: "Api", obj: dict) -> None:
        """Fill defaults and reset server-owned fields on a new object."""

    def prepare_update(self, api: "Api", old: dict, new: dict, subresource: str) -> None:
        """Carry over what this kind's update may not change; bump generation."""

    def validate(self, api: "Api", obj: dict, old: Optional[dict], subresource: str = "") -> list[Cause]:
        return []

    def admit(self, api: "Api", resource: "Resource", obj: dict, old: Optional[dict], subresource: str) -> None:
        """Validating admission, after validation: raise an ApiError (403) to refuse the write."""

    def delete(self, api: "Api", resource: "Resource", old: dict, options: dict, dry: bool) -> dict:
        """Remove old (its preconditions already checked) and answer the DELETE."""
        return api.delete_stored(resource, old, options, dry)
