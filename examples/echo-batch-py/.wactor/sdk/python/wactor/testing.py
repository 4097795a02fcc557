"""A fake host, so that the same ``app.py`` runs under plain CPython tests.

This module owns the stand-in for the wactor host: it records emits, keeps
state in a dict, serves config from a dict, collects log lines and answers
HTTP requests with scripted replies. It applies effects the way the host
does: emits and state writes count only when the call ends ``Done``. ::

    import unittest
    from wactor import Dead, Done, Retry, testing
    import app

    class AppTest(unittest.TestCase):
        def test_reverses(self):
            result = testing.run(
                app.handle,
                {"key": "B-1", "payload": {"booking_id": "B-1"}},   # the event-file format
                config={"wallet_url": "http://wallet"},
                http=[testing.Reply(503, headers={"Retry-After": "30"})],
            )
            self.assertEqual(result.outcome, Retry("wallet answered 503", delay_ms=30000))
            self.assertEqual(result.emits, [])
            self.assertEqual(result.requests[0].header_str("idempotency-key"), "B-1")

Not part of a component: ``app.py`` must not import it (it would only add
size; it works there, but nothing calls it).
"""

from __future__ import annotations

import json as _json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _host
from .actor import handler_of, run_handler
from .emit import Record
from .errors import HttpDenied, HttpError, HttpTransport, host_port
from .event import Event
from .http import Request, Response
from .outcome import Outcome

__all__ = ["Reply", "FakeHost", "Result", "run", "load_event"]


class Reply:
    """A scripted HTTP reply: ``Reply(status, body=b"", headers=None)``.

    ``body`` is bytes, str (UTF-8) or, with ``json=``, a value sent as JSON;
    ``headers`` a dict or a list of pairs. Instead of a ``Reply`` the
    ``http=`` list of ``run`` may hold an ``HttpError`` instance (raised,
    e.g. ``wactor.errors.HttpTimeout("ErrorCode::ConnectionTimeout")``) or a
    function ``request -> Reply | Response | HttpError``.
    """

    def __init__(self, status: int = 200, body: Union[bytes, str] = b"", headers: Any = None, *, json: Any = None) -> None:
        if json is not None:
            body = _json.dumps(json)
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        items = headers.items() if isinstance(headers, Mapping) else (headers or [])
        self.headers: List[Tuple[str, bytes]] = [
            (name.lower(), value.encode("utf-8") if isinstance(value, str) else bytes(value)) for name, value in items
        ]

    def response(self) -> Response:
        """The ``Response`` the actor sees."""
        return Response(self.status, list(self.headers), self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, body={self.body!r}, headers={self.headers!r})"


def _host_allowed(authority: str, scheme: str, patterns: Iterable[str]) -> bool:
    """The allow-list rule of docs/actors.md: ``host`` (any port),
    ``host:port``, ``*.domain`` (subdomains), ``*``; a URL without a port
    has 80 (http) or 443 (https). Case-insensitive."""
    host, _, port = authority.lower().rpartition(":") if ":" in authority and not authority.endswith("]") else (authority.lower(), "", "")
    if not port:
        port = "443" if scheme == "https" else "80"
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*":
            return True
        p_host, _, p_port = pattern.partition(":")
        if p_port and p_port != port:
            continue
        if p_host.startswith("*."):
            if host.endswith(p_host[1:]) and host != p_host[2:]:
                return True
        elif p_host == host:
            return True
    return False


class FakeHost:
    """The backend ``wactor.testing`` installs: one call's view of a host.

    Attributes (all may be set before a call):
        config (dict[str, str]): the config values.
        state (dict[str, bytes]): the committed state the call starts from.
        replies (list): scripted HTTP replies, consumed in order.
        allow_hosts (list[str] | None): when set, requests to other hosts
            fail with ``HttpDenied`` (no reply consumed).
        refuse_emits (str | None), refuse_state_writes (str | None): when
            set, every ``emit.send`` / ``state.set``/``delete`` is refused by
            the host with this reason (to test the ``Retry`` path).
    Recorded by the call:
        emitted (list[Record]), writes (dict[str, bytes | None]: ``None`` is
        a delete), logs (list[tuple[level, message]]), requests
        (list[Request]), unscripted (int: requests that found no reply).
    """

    def __init__(
        self,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[Mapping[str, Any]] = None,
        replies: Optional[Iterable[Any]] = None,
        allow_hosts: Optional[Iterable[str]] = None,
    ) -> None:
        self.config: Dict[str, str] = {str(k): str(v) for k, v in (config or {}).items()}
        self.state: Dict[str, bytes] = {str(k): _state_bytes(v) for k, v in (state or {}).items()}
        self.replies: List[Any] = list(replies or [])
        self.allow_hosts: Optional[List[str]] = None if allow_hosts is None else list(allow_hosts)
        self.refuse_emits: Optional[str] = None
        self.refuse_state_writes: Optional[str] = None
        self.emitted: List[Record] = []
        self.writes: Dict[str, Optional[bytes]] = {}
        self.logs: List[Tuple[str, str]] = []
        self.requests: List[Request] = []
        self.unscripted = 0

    # The backend interface of wactor._host.

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def emit(self, topic: str, key: Optional[bytes], payload: Optional[bytes], headers: List[Tuple[str, Optional[bytes]]]) -> None:
        if self.refuse_emits is not None:
            raise _host.HostRefused(self.refuse_emits)
        if not topic:
            raise _host.HostRefused("the topic name is empty")
        self.emitted.append(Record(topic, payload, key=key, headers=headers))

    def state_get(self, key: str) -> Optional[bytes]:
        if key in self.writes:
            return self.writes[key]
        return self.state.get(key)

    def state_set(self, key: str, value: bytes) -> None:
        self._check_write(key)
        self.writes[key] = bytes(value)

    def state_delete(self, key: str) -> None:
        self._check_write(key)
        self.writes[key] = None

    def _check_write(self, key: str) -> None:
        if self.refuse_state_writes is not None:
            raise _host.HostRefused(self.refuse_state_writes)
        if len(key.encode("utf-8")) > 4096:
            raise _host.HostRefused(f"state: a key of {len(key.encode('utf-8'))} bytes; the limit is 4096")

    def config_get(self, key: str) -> Optional[str]:
        return self.config.get(key)

    def config_all(self) -> List[Tuple[str, str]]:
        return sorted(self.config.items())

    def http_send(self, request: Request) -> Response:
        if self.allow_hosts is not None and not _host_allowed(request.authority, request.scheme, self.allow_hosts):
            # As the real host says it: naming the destination and the fix.
            raise HttpDenied(
                "ErrorCode::HttpRequestDenied",
                host=host_port(request.scheme, request.authority),
            )
        self.requests.append(request)
        if not self.replies:
            self.unscripted += 1
            raise HttpTransport(f"no scripted reply for {request.method} {request.url} (wactor.testing)")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, (Reply, Response)):
            reply = reply(request)
        if isinstance(reply, HttpError):
            raise reply
        if isinstance(reply, Reply):
            return reply.response()
        if isinstance(reply, Response):
            return reply
        raise TypeError(f"a scripted reply must be a Reply, a Response or an HttpError, not {type(reply).__name__}")


def _state_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return _json.dumps(value, separators=(",", ":")).encode("utf-8")


class Result:
    """What one call did, as the host would apply it.

    Attributes:
        outcome (Outcome): ``Done()``, ``Retry(...)`` or ``Dead(...)``.
        emits (list[Record]): the records the host would publish: those the
            call sent if it is ``Done``, else none.
        sent (list[Record]): every record the call sent, whatever its outcome.
        state (dict[str, bytes]): the state after the call: the starting
            state with the call's writes applied if it is ``Done``.
        writes (dict[str, bytes | None]): the call's writes (``None``: a
            delete), whatever its outcome.
        logs (list[tuple[str, str]]): (level, message) in order.
        requests (list[wactor.http.Request]): the HTTP requests made.
    """

    def __init__(self, outcome: Outcome, host: FakeHost) -> None:
        self.outcome = outcome
        self.sent = list(host.emitted)
        self.writes = dict(host.writes)
        self.logs = list(host.logs)
        self.requests = list(host.requests)
        done = outcome.is_done
        self.emits = list(self.sent) if done else []
        self.state = dict(host.state)
        if done:
            for key, value in self.writes.items():
                if value is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = value

    def state_json(self, key: str) -> Any:
        """``state[key]`` decoded from JSON (``None`` when absent)."""
        value = self.state.get(key)
        return None if value is None else _json.loads(value)

    def log_text(self) -> str:
        """The log lines as ``LEVEL message`` lines, for ``assertIn``."""
        return "\n".join(f"{level.upper()} {message}" for level, message in self.logs)

    def __repr__(self) -> str:
        return f"Result(outcome={self.outcome!r}, emits={self.emits!r}, writes={self.writes!r}, logs={self.logs!r})"


def load_event(event: Any) -> Event:
    """An ``Event`` from an ``Event``, a dict in the ``wactor invoke`` event
    file format (``Event.from_dict``), or the path of such a JSON file."""
    if isinstance(event, Event):
        return event
    if isinstance(event, Mapping):
        return Event.from_dict(event)
    if isinstance(event, (str, os.PathLike)):
        with open(event, "rb") as file:
            return Event.from_dict(_json.load(file))
    raise TypeError(f"an event is an Event, a dict or a path to an event file, not {type(event).__name__}")


def run(
    target: Union[Callable[[Event], Any], Any],
    event: Any,
    *,
    config: Optional[Mapping[str, Any]] = None,
    state: Optional[Mapping[str, Any]] = None,
    http: Optional[Iterable[Any]] = None,
    allow_hosts: Optional[Iterable[str]] = None,
    host: Optional[FakeHost] = None,
    strict_http: bool = True,
) -> Result:
    """Runs one call of an actor on a fake host, as ``wactor invoke`` would.

    Args:
        target: the ``@actor`` function, the module that has one (``app``),
            or any function of one ``Event``.
        event: an ``Event``, a dict in the event-file format (as
            ``event.json``: ``payload`` is any JSON value, ``payload_text``,
            ``payload_base64``, ``key``, ``headers``, ``attempt``...), or the
            path of an event file.
        config: config values (str; others are converted with ``str``).
        state: the committed state the call starts from; values bytes, str
            (UTF-8) or anything else (stored as JSON).
        http: scripted replies, one per request, in order (``Reply``, an
            ``HttpError`` to raise, or a function of the ``Request``).
        allow_hosts: when given, the allow-list (``host``, ``host:port``,
            ``*.domain``, ``*``); other hosts are denied as by the host.
        host: a ``FakeHost`` to use instead (set ``refuse_emits`` etc. on it);
            ``config``/``state``/``http``/``allow_hosts`` then must be None.
        strict_http: when true (default), a request without a scripted reply
            fails the test with ``AssertionError`` after the call (the actor
            sees an ``HttpTransport`` error during it).

    Returns:
        ``Result`` (outcome, emits, state, writes, logs, requests).
    """
    handler = handler_of(target)
    the_event = load_event(event)
    if host is None:
        host = FakeHost(config=config, state=state, replies=http, allow_hosts=allow_hosts)
    elif any(arg is not None for arg in (config, state, http, allow_hosts)):
        raise TypeError("give host= or config/state/http/allow_hosts, not both")
    previous = _host.install(host)
    try:
        outcome = run_handler(handler, the_event)
    finally:
        _host.install(previous)
    if strict_http and host.unscripted:
        raise AssertionError(
            f"the actor made {len(host.requests)} HTTP request(s) and {host.unscripted} had no scripted reply "
            f"(pass http=[testing.Reply(...), ...]); outcome was {outcome!r}; requests: {host.requests!r}"
        )
    return Result(outcome, host)
