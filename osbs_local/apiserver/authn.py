"""Who makes a request: the engine's own bearer token (a cluster admin) or a ServiceAccount token.

ServiceAccount tokens are issued through the TokenRequest API (`kubectl create token NAME`, POST
serviceaccounts/NAME/token), as on Kubernetes; a token is valid until it expires or its ServiceAccount is deleted.
They are kept in memory: an engine restart invalidates them (a real cluster's bound tokens outlive an apiserver
restart; get a new one with `kubectl create token`).

The user of the request being handled is in a context variable: the request's thread sets it, and the engine's own
controllers, which act with no request, see None (they are the cluster, not a user).
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]

    @property
    def is_cluster_admin(self) -> bool:
        return MASTERS in self.groups

    @property
    def service_account(self) -> Optional[tuple[str, str]]:
        """(namespace, name) for a ServiceAccount's user."""
        prefix, _, rest = self.name.partition("system:serviceaccount:")
        namespace, _, name = rest.partition(":")
        return (namespace, name) if not prefix and namespace and name else None


ADMIN = UserInfo("system:admin", (MASTERS, AUTHENTICATED))

_current: ContextVar[Optional[UserInfo]] = ContextVar("osbs_local_request_user", default=None)


def current_user() -> Optional[UserInfo]:
    """The user of the request being handled; None for the engine's own controllers."""
    return _current.get()


@contextlib.contextmanager
def acting_as(user: UserInfo) -> Iterator[None]:
    token = _current.set(user)
    try:
        yield
    finally:
        _current.reset(token)


def service_account_user(namespace: str, name: str) -> UserInfo:
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED))


@dataclass
class _Issued:
    namespace: str
    service_account: str
    uid: str
    expires: float


class Tokens:
    """The admin token and the ServiceAccount tokens issued since the engine started."""

    def __init__(self, admin_token: str):
        self._admin = admin_token.encode()
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def issue(self, namespace: str, service_account: str, uid: str, seconds: int) -> tuple[str, float]:
        token = "sha256~" + secrets.token_urlsafe(32)
        expires = time.time() + seconds
        with self._lock:
            self._issued[token] = _Issued(namespace, service_account, uid, expires)
        return token, expires

    def authenticate(self, token: str, service_account_uid: Callable[[str, str], Optional[str]]) -> Optional[UserInfo]:
        """The token's user, or None. `service_account_uid(namespace, name)` says whether its ServiceAccount still
        exists (as the one the token was issued for)."""
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        with self._lock:
            issued = self._issued.get(token)
            if issued is not None and issued.expires <= time.time():
                del self._issued[token]
                issued = None
        if issued is None or service_account_uid(issued.namespace, issued.service_account) != issued.uid:
            return None
        return service_account_user(issued.namespace, issued.service_account)
