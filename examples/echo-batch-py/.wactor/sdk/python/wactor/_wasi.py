"""The real host: the component's WIT imports, as componentize-py binds them.

This module owns every use of the generated ``wit_world`` bindings and of
``componentize_py_types``: the ``wactor:actor`` imports (logging, emit,
state, config), the conversion of the WIT ``event`` in and ``outcome`` out,
and the blocking HTTP exchange over ``wasi:http/outgoing-handler``,
``wasi:io`` and ``wasi:clocks``. It is imported only inside a component
(``wactor._host`` picks it when ``wit_world`` exists), never under plain
CPython.

HTTP notes (componentize-py 0.25.1): the bundled ``poll_loop.py`` is not
used (it does not work with this world); every wait polls the ready
pollable together with one deadline timer, as the Rust SDK does. Child
resources (streams, pollables) are dropped before their parents with
``with`` blocks, since dropping a parent first traps. A refused host makes
the body write fail; the reason (``HTTP-request-denied``) comes from the
response future, so a response or its error code always wins over a body
write error.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from componentize_py_types import Err
from wit_world.imports import config as _config
from wit_world.imports import emit as _emit
from wit_world.imports import logging as _logging
from wit_world.imports import monotonic_clock, outgoing_handler, poll, streams
from wit_world.imports import state as _state
from wit_world.imports import wactor_actor_types as _types
from wit_world.imports import wasi_http_types as _http

from ._host import HostRefused
from .errors import HttpDenied, HttpError, host_port, HttpInvalidRequest, HttpInvalidUrl, HttpTimeout, HttpTransport
from .event import Event
from .http import Request, Response
from .outcome import Dead, Done, Outcome, Retry

__all__ = ["WasiHost", "event_from_wit", "outcome_to_wit"]

_LEVELS = {
    "trace": _logging.Level.TRACE,
    "debug": _logging.Level.DEBUG,
    "info": _logging.Level.INFO,
    "warn": _logging.Level.WARN,
    "error": _logging.Level.ERROR,
}

#: How many bytes to ask for per read of a response body.
_READ_CHUNK = 64 * 1024


def event_from_wit(event: Any) -> Event:
    """The SDK's ``Event`` from the WIT ``event`` record."""
    out = Event.__new__(Event)
    out.topic = event.topic
    out.partition = event.partition
    out.offset = event.offset
    out.timestamp_ms = event.timestamp_ms
    out.key = event.key
    out.payload = event.payload
    out.headers = [(header.name, header.value) for header in event.headers]
    out.attempt = event.attempt
    return out


def outcome_to_wit(outcome: Outcome) -> Any:
    """The WIT ``outcome`` variant of an SDK outcome."""
    if isinstance(outcome, Retry):
        return _types.Outcome_Retry(_types.RetryAfter(reason=outcome.reason, delay_ms=outcome.delay_ms))
    if isinstance(outcome, Dead):
        return _types.Outcome_Dead(outcome.reason)
    return _types.Outcome_Done()


class WasiHost:
    """The backend of ``wactor._host`` inside a component."""

    def log(self, level: str, message: str) -> None:
        _logging.log(_LEVELS[level], message)

    def emit(self, topic: str, key: Optional[bytes], payload: Optional[bytes], headers: List[Tuple[str, Optional[bytes]]]) -> None:
        record = _emit.OutgoingRecord(
            topic=topic,
            key=key,
            payload=payload,
            headers=[_types.Header(name=name, value=value) for name, value in headers],
        )
        try:
            _emit.send(record)
        except Err as err:
            raise HostRefused(str(err.value)) from None

    def state_get(self, key: str) -> Optional[bytes]:
        return _state.get(key)

    def state_set(self, key: str, value: bytes) -> None:
        try:
            _state.set(key, value)
        except Err as err:
            raise HostRefused(str(err.value)) from None

    def state_delete(self, key: str) -> None:
        try:
            _state.delete(key)
        except Err as err:
            raise HostRefused(str(err.value)) from None

    def config_get(self, key: str) -> Optional[str]:
        return _config.get(key)

    def config_all(self) -> List[Tuple[str, str]]:
        return list(_config.get_all())

    def http_send(self, request: Request) -> Response:
        try:
            with monotonic_clock.subscribe_duration(request.timeout_ms * 1_000_000) as timer:
                return _exchange(request, _Deadline(timer, request.timeout_ms))
        except HttpDenied as err:
            if err.host is not None:
                raise
            # The allow-list refused it: say which host:port and how to allow it.
            raise HttpDenied(err.detail, host=host_port(request.scheme, request.authority)) from None


# --- HTTP -------------------------------------------------------------------

_METHODS = {
    "GET": _http.Method_Get,
    "HEAD": _http.Method_Head,
    "POST": _http.Method_Post,
    "PUT": _http.Method_Put,
    "PATCH": _http.Method_Patch,
    "DELETE": _http.Method_Delete,
    "OPTIONS": _http.Method_Options,
}

_TIMEOUT_CODES = (
    "DnsTimeout",
    "ConnectionTimeout",
    "ConnectionReadTimeout",
    "ConnectionWriteTimeout",
    "HttpResponseTimeout",
)


def _code_text(code: Any) -> str:
    """``ErrorCode::Name`` (and its payload, if any), like the Rust SDK's."""
    name = type(code).__name__.replace("ErrorCode_", "", 1)
    value = getattr(code, "value", None)
    return f"ErrorCode::{name}" if value is None else f"ErrorCode::{name}({value})"


def _from_code(code: Any) -> HttpError:
    """The SDK error for a ``wasi:http`` ``error-code``."""
    name = type(code).__name__.replace("ErrorCode_", "", 1)
    text = _code_text(code)
    if name == "HttpRequestDenied":
        return HttpDenied(text)
    if name in _TIMEOUT_CODES:
        return HttpTimeout(text)
    return HttpTransport(text)


def _from_stream(err: Any, what: str) -> HttpError:
    """The SDK error for a ``wasi:io`` ``stream-error``."""
    if isinstance(err, streams.StreamError_Closed):
        return HttpTransport(f"stream closed while {what}")
    io_error = getattr(err, "value", None)
    if io_error is not None:
        try:
            code = _http.http_error_code(io_error)
        except Exception:  # pragma: no cover - a host without the mapping
            code = None
        if code is not None:
            return _from_code(code)
        try:
            return HttpTransport(f"{what}: {io_error.to_debug_string()}")
        except Exception:  # pragma: no cover
            pass
    return HttpTransport(f"{what}: {err!r}")


class _Deadline:
    """The one deadline of an exchange: a pollable that every wait includes."""

    def __init__(self, timer: Any, timeout_ms: int) -> None:
        self.timer = timer
        self.timeout_ms = timeout_ms

    def wait(self, ready: Any, what: str) -> None:
        """Blocks until ``ready`` is ready; raises ``HttpTimeout`` once the
        deadline passes first."""
        fired = poll.poll([ready, self.timer])
        if 0 not in fired:
            raise HttpTimeout(f"no progress {what} within {self.timeout_ms} ms")


def _exchange(request: Request, deadline: _Deadline) -> Response:
    try:
        fields = _http.Fields.from_list(list(request.headers))
    except Err as err:
        raise HttpInvalidRequest(f"a header is refused: {type(err.value).__name__}") from None
    outgoing = _http.OutgoingRequest(fields)
    try:
        outgoing.set_method(_METHODS[request.method]())
    except Err:
        raise HttpInvalidRequest("method refused") from None
    try:
        outgoing.set_scheme(_http.Scheme_Https() if request.scheme == "https" else _http.Scheme_Http())
        outgoing.set_authority(request.authority)
        outgoing.set_path_with_query(request.path_with_query)
    except Err:
        raise HttpInvalidUrl(f"{request.url}: refused by wasi:http") from None
    try:
        body = outgoing.body()
    except Err:
        raise HttpInvalidRequest("request body already taken") from None

    options = _http.RequestOptions()
    nanos = request.timeout_ms * 1_000_000
    # A host may not support some of these; the deadline holds regardless.
    for setter in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
        try:
            setter(nanos)
        except Err:
            pass

    try:
        future = outgoing_handler.handle(outgoing, options)
    except Err as err:
        with body:
            pass
        raise _from_code(err.value) from None

    with future:
        # A failed body write is not an error by itself: the server may
        # answer without reading the body, and a refused host fails the
        # write while the future holds the reason.
        body_error = _write_body(body, request.body, deadline)
        incoming = _wait_response(future, deadline, body_error)
        with incoming:
            status = incoming.status()
            with incoming.headers() as fields:
                headers = [(name, bytes(value)) for name, value in fields.entries()]
            data = _read_body(incoming, deadline)
    return Response(status, headers, data)


def _write_body(body: Any, data: bytes, deadline: _Deadline) -> Optional[HttpError]:
    """Writes the whole body, flushes and finishes it; returns the error
    instead of raising it (the response future may say more). A body that
    could not be written is dropped unfinished, which aborts the request."""
    error: Optional[HttpError] = None
    try:
        stream = body.write()
    except Err:
        error = HttpInvalidRequest("request body stream already taken")
    else:
        with stream:
            with stream.subscribe() as ready:
                try:
                    view = memoryview(data)
                    while len(view):
                        permitted = stream.check_write()
                        if permitted == 0:
                            deadline.wait(ready, "writing the request body")
                            continue
                        chunk = view[: min(permitted, len(view))]
                        stream.write(bytes(chunk))
                        view = view[len(chunk):]
                    stream.flush()
                    while stream.check_write() == 0:
                        deadline.wait(ready, "flushing the request body")
                except Err as err:
                    error = _from_stream(err.value, "writing the request body")
                except HttpError as err:
                    error = err
    if error is not None:
        with body:
            pass
        return error
    try:
        _http.OutgoingBody.finish(body, None)
    except Err as err:
        return _from_code(err.value)
    return None


def _wait_response(future: Any, deadline: _Deadline, body_error: Optional[HttpError]) -> Any:
    """Waits for the response head. A response or its error code wins over
    ``body_error``; without either, the deadline's ``HttpTimeout`` (which
    mentions ``body_error``)."""
    with future.subscribe() as ready:
        while True:
            result = future.get()
            if result is not None:
                break
            try:
                deadline.wait(ready, "waiting for the response")
            except HttpTimeout as err:
                if body_error is not None:
                    raise HttpTimeout(f"{err.detail} (the request body was not sent: {body_error})") from None
                raise
    if isinstance(result, Err):
        raise HttpTransport("response already taken")
    inner = result.value
    if isinstance(inner, Err):
        raise _from_code(inner.value)
    return inner.value


def _read_body(incoming: Any, deadline: _Deadline) -> bytes:
    """Reads the response body until its stream closes."""
    try:
        body = incoming.consume()
    except Err:
        raise HttpTransport("response body already taken") from None
    chunks = []
    try:
        stream = body.stream()
    except Err:
        with body:
            pass
        raise HttpTransport("response body stream already taken") from None
    try:
        with stream:
            with stream.subscribe() as ready:
                while True:
                    try:
                        chunk = stream.read(_READ_CHUNK)
                    except Err as err:
                        if isinstance(err.value, streams.StreamError_Closed):
                            break
                        raise _from_stream(err.value, "reading the response body") from None
                    if chunk:
                        chunks.append(bytes(chunk))
                    else:
                        deadline.wait(ready, "reading the response body")
    except BaseException:
        with body:
            pass
        raise
    trailers = _http.IncomingBody.finish(body)
    with trailers:
        pass
    return b"".join(chunks)
