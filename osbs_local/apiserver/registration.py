"""The kinds the server serves, each registered once by its own module under osbs_local/kinds.

A Kind bundles what the generic layer needs to serve it: the Resource (discovery, routing), the Strategy
(the generic store's per-kind rules; None for a kind computed from other objects), the REST handlers
that replace or extend the generic verbs, the Table columns `kubectl get` prints, the keyed lists of a
strategic merge patch and any metrics.  The generic layer looks kinds up here and never names one,
except namespaces, which scope every namespaced path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from .resource import Resource
from .strategy import Strategy

if TYPE_CHECKING:
    from .api import Api
    from .rest import Request, Response

NAMESPACES = "namespaces"

# A Table column: name, type, description, cell(obj), priority.
Column = tuple[str, str, str, Callable[[dict], object], int]
Handler = Callable[["Request"], "Response"]


@dataclass(frozen=True)
class PublicHandler:
    """A handler called without the bearer token: a credential of its own comes in its extra path segments.

    Its path is the subresource's followed by one segment per parameter (buildconfigs/NAME/webhooks/SECRET/TYPE).
    """

    parameters: tuple[str, ...]
    handle: Handler


@dataclass
class Kind:
    resource: Resource
    strategy: Optional[Strategy] = None
    # (verb, subresource) -> handler, verb one of get, list, create, update, patch, delete; "" is the object itself.
    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    public_handlers: dict[tuple[str, str], PublicHandler] = field(default_factory=dict)
    columns: Optional[list[Column]] = None
    merge_keys: dict[str, str] = field(default_factory=dict)
    # Prometheus text lines this kind adds to /metrics.
    metrics: Optional[Callable[["Api"], list[str]]] = None


_KINDS: dict[tuple[str, str], Kind] = {}
_BY_PLURAL: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    key = (kind.resource.group, kind.resource.plural)
    if key in _KINDS:
        raise ValueError(f"kind {kind.resource.qualified_plural} is registered twice")
    _KINDS[key] = kind
    _BY_PLURAL[kind.resource.plural] = kind


def lookup(group: str, plural: str) -> Optional[Kind]:
    return _KINDS.get((group, plural))


def by_plural(plural: str) -> Optional[Kind]:
    return _BY_PLURAL.get(plural)


def resource(plural: str) -> Resource:
    """The Resource of a registered kind (a KeyError names a kind that was never registered)."""
    return _BY_PLURAL[plural].resource


def kinds() -> list[Kind]:
    """Every registered kind, in registration order (the order discovery lists them in)."""
    return list(_KINDS.values())


def groups() -> list[str]:
    """The named API groups, in the order their first kind was registered."""
    return list(dict.fromkeys(kind.resource.group for kind in _KINDS.values() if kind.resource.group))


def strategy(plural: str) -> Strategy:
    kind = _BY_PLURAL.get(plural)
    return kind.strategy if kind is not None and kind.strategy is not None else Strategy()
