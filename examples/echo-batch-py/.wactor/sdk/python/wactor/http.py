"""A small blocking HTTP client over ``wasi:http/outgoing-handler``.

This module owns the public side of outbound HTTP: building a ``Request``,
checking its URL, and the ``Response``. Sending is the host's job (the
component's ``wasi:http`` imports in ``wactor._wasi``, or the scripted
replies of ``wactor.testing``)::

    from wactor import http

    response = http.post(
        "http://wallet.internal:8080/reservations/R-1/reverse",
        headers={"Idempotency-Key": "B-1001"},
        json={"amount": 25000},
        timeout_ms=5000,
    )
    if response.is_success():
        body = response.json()

A response with any status is returned: 4xx and 5xx are for the actor to
judge. An ``HttpError`` (outcome ``Retry`` when it escapes ``handle``) means
no response arrived: ``HttpDenied`` (the host is not on the allow-list),
``HttpTimeout``, ``HttpInvalidUrl``, ``HttpInvalidRequest``,
``HttpTransport`` (connection refused, DNS, TLS...).

The host lets an actor reach only the hosts on its allow-list (manifest
``allowed_hosts``, ``wactor invoke --allow-host``). HTTP calls are not
transactional: a retried event makes them again, so send an idempotency key.
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from . import _host, _jsonlimit
from .errors import (
    HttpDenied,
    HttpError,
    HttpInvalidRequest,
    HttpInvalidUrl,
    HttpTimeout,
    HttpTransport,
)

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "METHODS",
    "Request",
    "Response",
    "request",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "HttpError",
    "HttpDenied",
    "HttpTimeout",
    "HttpInvalidUrl",
    "HttpInvalidRequest",
    "HttpTransport",
]

#: The timeout of a request that does not set one: 10 s.
DEFAULT_TIMEOUT_MS = 10_000
#: The methods the client sends.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

HeaderInput = Union[None, Mapping[str, Union[str, bytes]], Iterable[Tuple[str, Union[str, bytes]]]]


def _find(headers: List[Tuple[str, bytes]], name: str) -> Optional[bytes]:
    lowered = name.lower()
    for header, value in headers:
        if header.lower() == lowered:
            return value
    return None


def split_url(url: str) -> Tuple[str, str, str]:
    """``(scheme, authority, path_with_query)`` of an ``http``/``https``
    URL, the parts ``wasi:http`` wants separately: the scheme lower case,
    the fragment dropped, the path ``/`` when empty. Raises
    ``HttpInvalidUrl`` for anything else (no scheme, another scheme, no
    host, credentials, whitespace)."""
    if not isinstance(url, str):
        raise HttpInvalidUrl(f"{url!r}: a URL must be str")
    if "://" not in url:
        raise HttpInvalidUrl(f"{url}: no scheme (expected http:// or https://)")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise HttpInvalidUrl(f"{url}: unsupported scheme (expected http or https)")
    rest = rest.split("#", 1)[0]
    end = len(rest)
    for sep in "/?":
        index = rest.find(sep)
        if index != -1:
            end = min(end, index)
    authority, path = rest[:end], rest[end:]
    if not authority:
        raise HttpInvalidUrl(f"{url}: no host")
    if "@" in authority:
        raise HttpInvalidUrl(f"{url}: credentials in the URL are not supported")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise HttpInvalidUrl(f"{url}: contains whitespace")
    if not path:
        path = "/"
    elif path.startswith("?"):
        path = "/" + path
    return scheme, authority, path


class Request:
    """An outgoing request, as the host (or the test fake) receives it.

    Attributes:
        method (str): upper case, one of ``METHODS``.
        url (str): as given.
        scheme, authority, path_with_query (str): ``split_url(url)``.
        headers (list[tuple[str, bytes]]): in order, ``content-length`` (and
            ``content-type`` for a JSON body) added.
        body (bytes): ``b""`` for none.
        timeout_ms (int): for the whole exchange (connect, send, wait, read).
    """

    __slots__ = ("method", "url", "scheme", "authority", "path_with_query", "headers", "body", "timeout_ms")

    def __init__(self, method: str, url: str, headers: List[Tuple[str, bytes]], body: bytes, timeout_ms: int) -> None:
        self.method = method
        self.url = url
        self.scheme, self.authority, self.path_with_query = split_url(url)
        self.headers = headers
        self.body = body
        self.timeout_ms = timeout_ms

    def header(self, name: str) -> Optional[bytes]:
        """The first value of header ``name`` (case-insensitive)."""
        return _find(self.headers, name)

    def header_str(self, name: str) -> Optional[str]:
        """``header(name)`` as text (invalid UTF-8 replaced)."""
        value = self.header(name)
        return None if value is None else value.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body decoded as JSON (for tests)."""
        return _jsonlimit.loads(self.body)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url}, headers={self.headers!r}, body={self.body!r})"


class Response:
    """A response, with its whole body read.

    Attributes:
        status (int): the status code.
        headers (list[tuple[str, bytes]]): as received (names lower case
            from the real host).
        body (bytes): the whole body.
    """

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Optional[List[Tuple[str, bytes]]] = None, body: bytes = b"") -> None:
        self.status = status
        self.headers = list(headers or [])
        self.body = body

    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[bytes]:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return _find(self.headers, name)

    def header_str(self, name: str) -> Optional[str]:
        """``header(name)`` as text: ``None`` when absent or not UTF-8."""
        value = self.header(name)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def retry_after_ms(self) -> Optional[int]:
        """The delay a ``Retry-After`` header asks for, in milliseconds, when
        it is given in whole seconds (the HTTP-date form gives ``None``)."""
        value = self.header_str("retry-after")
        if value is None:
            return None
        value = value.strip()
        if not value.isascii() or not value.isdigit():
            return None
        return int(value) * 1000

    def text(self) -> str:
        """The body as text, invalid UTF-8 replaced."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body decoded as JSON; raises ``ValueError`` when it is not
        (not an SDK error: an uncaught one is a ``Retry``; decide yourself),
        also when it nests arrays/objects deeper than 512 (``ValueError:
        nested deeper than 512``; not parsed, since that would exhaust the
        component's stack, a trap)."""
        return _jsonlimit.loads(self.body)

    def __repr__(self) -> str:
        return f"Response(status={self.status}, headers={self.headers!r}, body={self.body!r})"


def _header_list(headers: HeaderInput) -> List[Tuple[str, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        if not isinstance(name, str):
            raise HttpInvalidRequest(f"a header name must be str, not {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        else:
            raise HttpInvalidRequest(f"header {name}: a value must be str or bytes, not {type(value).__name__}")
        out.append((name, value))
    return out


def request(
    method: str,
    url: str,
    *,
    headers: HeaderInput = None,
    body: Union[None, bytes, str] = None,
    json: Any = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> Response:
    """Sends a request and reads the whole response; blocks until then.

    Args:
        method: ``GET``, ``HEAD``, ``POST``, ``PUT``, ``PATCH``, ``DELETE`` or
            ``OPTIONS`` (any case).
        url: ``http://`` or ``https://`` URL.
        headers: a dict or a list of (name, value) pairs; values str or bytes.
        body: bytes, or str sent as UTF-8. A ``content-length`` header is
            added for a non-empty body.
        json: a value sent as compact JSON with ``content-type:
            application/json`` (unless a content type is set); not with
            ``body``.
        timeout_ms: the time the whole exchange may take (connecting,
            sending, waiting for and reading the response). Keep it below
            the actor's call deadline (``[limits] call_timeout``, 10 s by
            default), or the call is cut off as a trap instead.

    Returns:
        ``Response`` (any status).

    Raises:
        ``HttpDenied``, ``HttpTimeout``, ``HttpInvalidUrl``,
        ``HttpInvalidRequest``, ``HttpTransport`` (all ``HttpError``,
        outcome ``Retry``).
    """
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise HttpInvalidRequest(f"unsupported method {method!r} (expected one of {', '.join(METHODS)})")
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
        raise HttpInvalidRequest(f"timeout_ms must be a positive number of milliseconds, not {timeout_ms!r}")
    header_list = _header_list(headers)
    if json is not None:
        if body is not None:
            raise HttpInvalidRequest("give body or json, not both")
        try:
            body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise HttpInvalidRequest(f"body is not encodable as JSON: {err}") from None
        if _find(header_list, "content-type") is None:
            header_list.append(("content-type", b"application/json"))
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise HttpInvalidRequest(f"a body must be bytes or str, not {type(body).__name__} (use json= for values)")
    if data and _find(header_list, "content-length") is None:
        header_list.append(("content-length", str(len(data)).encode()))
    req = Request(method.upper(), url, header_list, data, int(timeout_ms))
    return _host.current().http_send(req)


def get(url: str, **kwargs: Any) -> Response:
    """``request("GET", url, **kwargs)``."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """``request("POST", url, **kwargs)``."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    """``request("PUT", url, **kwargs)``."""
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> Response:
    """``request("PATCH", url, **kwargs)``."""
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """``request("DELETE", url, **kwargs)``."""
    return request("DELETE", url, **kwargs)
