"""Object metadata the server stamps: timestamps, names and generated names."""

from __future__ import annotations

import re
import time

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """UTC RFC3339 to whole seconds, the way metav1.Time serialises."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
