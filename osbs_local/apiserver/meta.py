"""Object metadata the server stamps: timestamps, names and generated names."""

from __future__ import annotations

import re
import time

from .errors import Cause

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """UTC RFC3339 to whole seconds, the way metav1.Time serialises."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# apimachinery api/validation/objectmeta.go TotalAnnotationSizeLimitB: keys and values together, in bytes.
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)


def annotation_size_causes(meta: dict) -> list[Cause]:
    """ValidateAnnotations' size rule, which ValidateObjectMeta(Update) applies to every kind on create and update."""
    annotations = meta.get("annotations") or {}
    size = sum(len(str(key).encode("utf-8")) + len(str(value).encode("utf-8")) for key, value in annotations.items())
    if size <= TOTAL_ANNOTATION_SIZE_LIMIT:
        return []
    return [Cause("metadata.annotations", "FieldValueTooLong", "may not be more than %d bytes" % TOTAL_ANNOTATION_SIZE_LIMIT)]
