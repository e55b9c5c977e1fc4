"""The environment every child process of osbs-local starts with, built on purpose rather than inherited.

Tools read configuration from their environment: docker-registry takes any REGISTRY_* variable as a setting
(REGISTRY_AUTH_FILE, which podman and skopeo users export, stops it from starting), Pulp reads PULP_*,
PostgreSQL's tools PG*, git GIT_* (GIT_SSH_COMMAND, GIT_CONFIG_PARAMETERS), buildah REGISTRY_AUTH_FILE and
CONTAINERS_*. Whoever ran `osbs-local up` must not configure the engine's children by accident, so each child
gets where to find programs, its home, a locale and a temporary directory, and then what it needs by name.
"""

from __future__ import annotations

import os

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where things are, not how they behave: passed on from the engine's own environment.
_LOCATION_VARIABLES = ("PATH", "HOME", "TMPDIR")
# The machine's network settings: builders fetch sources and images from other hosts, as the engine's user would.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def child_environment(*passed_on: str, **settings: str) -> dict:
    """PATH, HOME, TMPDIR (when set), a C.UTF-8 locale, the variables named in passed_on (when set), then settings."""
    env = {name: os.environ[name] for name in _LOCATION_VARIABLES + passed_on if os.environ.get(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", os.path.expanduser("~"))
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.update(settings)
    return env
