# Copyright (c) osbs.flow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `registry_uri` setting of OSBS: `[http[s]://]host[:port][/v2]`."""

from __future__ import annotations

import re
from collections import namedtuple

from ansible_collections.osbs.flow.plugins.module_utils.errors import OsbsFlowError
from ansible_collections.osbs.flow.plugins.module_utils.git_input import mask_credentials

RegistryURI = namedtuple("RegistryURI", "scheme host insecure")
"""scheme is `https` or `http`; host is `host[:port]`; insecure is True for http://."""

_HOST_PORT = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?\Z")


def shown_registry_uri(uri):
    """`uri` as messages show it: user info masked, with or without a scheme."""
    if not isinstance(uri, str):
        return uri
    if "://" in uri:
        return mask_credentials(uri)
    return mask_credentials("https://" + uri)[len("https://"):]


def parse_registry_uri(uri):
    """Parse `registry_uri`: the scheme is optional (`http://` means insecure); `/v2` may end it."""
    shown = shown_registry_uri(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise OsbsFlowError("registry_uri %r is empty: give the registry as host[:port], for example registry.example.com" % (shown,))
    text = uri.strip()
    scheme = "https"
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match:
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise OsbsFlowError(
                "registry_uri %r has the scheme %r: use https:// (the default) or http:// for an insecure registry" % (shown, scheme)
            )
        text = text[match.end():]
    host, _sep, path = text.partition("/")
    if "@" in host:
        raise OsbsFlowError(
            "registry_uri %r holds credentials: give the registry as host[:port] and its credentials in a dockercfg "
            "secret (registry_secret) or file (registry_dockercfg_path)" % (shown,)
        )
    path = path.strip("/")
    if path == "v1":
        raise OsbsFlowError(
            "registry_uri %r names the v1 registry API, which OSBS no longer supports: "
            "use a v2 registry (drop the /v1 suffix or replace it with /v2)" % (shown,)
        )
    if path not in ("", "v2"):
        raise OsbsFlowError(
            "registry_uri %r has the path %r: a registry_uri is host[:port], optionally followed by /v2" % (shown, "/" + path)
        )
    if not _HOST_PORT.match(host):
        raise OsbsFlowError("registry_uri %r has no valid host[:port] (got %r)" % (shown, shown_registry_uri(host)))
    port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else None
    if port is not None and not 0 < int(port) < 65536:
        raise OsbsFlowError("registry_uri %r has the port %s, outside 1-65535" % (shown, port))
    return RegistryURI(scheme, host, scheme == "http")
