"""What a kind's REST handler receives and answers; the HTTP layer turns a Response into bytes on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

if TYPE_CHECKING:
    from .api import Api
    from .resource import Resource


@dataclass
class Request:
    api: "Api"
    resource: "Resource"
    namespace: Optional[str]
    name: Optional[str]
    subresource: str = ""
    query: dict = field(default_factory=dict)
    body: Any = None
    dry_run: Optional[list[str]] = None
    content_type: str = ""  # of the body (PATCH: which patch)
    options: dict = field(default_factory=dict)  # DeleteOptions
    path_parameters: dict = field(default_factory=dict)  # a public handler's extra path segments
    predicate: Optional[Callable[[dict], bool]] = None  # list: the label and field selectors
    stopped: Callable[[], bool] = lambda: False  # a stream ends when this turns true (client gone, server stopping)


@dataclass
class Response:
    code: int
    body: Any = None  # a dict or JSON text
    # May be answered as a meta.k8s.io Table when kubectl asks for one (objects and lists of the kind).
    printable: bool = False
    # A streamed answer (logs): chunks of bytes sent with chunked transfer encoding.
    stream: Optional[Iterator[bytes]] = None
    content_type: str = "application/json"


def ok(body: Any, printable: bool = False) -> Response:
    return Response(200, body, printable)


def created(body: Any) -> Response:
    return Response(201, body)
