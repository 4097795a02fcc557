"""The SDK's exceptions, and the outcome each one ends a call with.

This module owns the error types of every other module of the SDK, so that
the mapping onto outcomes (the Python spelling of the Rust SDK's ``?``
table) is in one place. An error the handler does not catch ends the call
with ``error.outcome()``:

- ``PayloadError`` (``Event.json``, ``Event.payload_str``): ``Dead``; the
  same bytes fail on every attempt.
- ``MissingConfig`` (``config.require``): ``Dead``; only a new manifest
  fixes it.
- ``EmitRejected`` (``emit.send``): ``Retry``; the host refused the record
  (a per-call limit, a reserved topic).
- ``EmitEncodeError`` (``emit.send_json``, ``Record.json``): ``Dead``; the
  value is not JSON.
- ``StateRejected`` (``state.set``, ``state.delete``, ``state.set_json``):
  ``Retry``; the reason names the limit.
- ``StateDecodeError`` (``state.get_json``): ``Retry``; the actor's own data.
- ``StateEncodeError`` (``state.set_json``): ``Dead``.
- ``HttpError`` and its kinds (``http.request``): ``Retry``; no response
  arrived.

Any other exception that escapes ``handle`` ends the call with
``Retry("<Type>: <message>")`` and its traceback logged at error level.
"""

from __future__ import annotations

from typing import Optional

from .outcome import Dead, Outcome, Retry

__all__ = [
    "WactorError",
    "PayloadError",
    "MissingConfig",
    "EmitError",
    "EmitRejected",
    "EmitEncodeError",
    "StateError",
    "StateRejected",
    "StateDecodeError",
    "StateEncodeError",
    "HttpError",
    "HttpDenied",
    "HttpTimeout",
    "HttpInvalidUrl",
    "HttpInvalidRequest",
    "HttpTransport",
]


class WactorError(Exception):
    """Base of every error the SDK raises. ``str(err)`` is the reason the
    outcome carries; ``err.outcome()`` is that outcome."""

    def outcome(self) -> Outcome:
        """The outcome a call ends with when this error escapes ``handle``."""
        return Retry(str(self))


class PayloadError(WactorError, ValueError):
    """The payload is not what the actor expects: not UTF-8, not JSON, or not
    the JSON shape asked for. ``str(err)`` starts with ``malformed JSON
    payload:`` or ``payload is not UTF-8:``. Raise it yourself for a payload
    your own checks refuse: ``raise PayloadError("malformed JSON payload:
    amount must be positive")``. Outcome: ``Dead``."""

    def outcome(self) -> Outcome:
        return Dead(str(self))


class MissingConfig(WactorError, LookupError):
    """A required config value is not set. ``err.key`` is the key; the
    reason is ``config <key> is not set``. Outcome: ``Dead``."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"config {key} is not set")

    def outcome(self) -> Outcome:
        return Dead(str(self))


class EmitError(WactorError):
    """A record was not queued (see the two subclasses)."""


class EmitRejected(EmitError):
    """The host refused the record: an invalid or reserved topic, or more
    records or bytes than a call may emit. ``err.host_reason`` is the host's
    text; the reason is ``emit rejected: <host reason>``. Outcome: ``Retry``."""

    def __init__(self, host_reason: str) -> None:
        self.host_reason = host_reason
        super().__init__(f"emit rejected: {host_reason}")


class EmitEncodeError(EmitError, ValueError):
    """A value given to ``emit.send_json``/``Record.json`` is not encodable as
    JSON. Outcome: ``Dead`` (it never will be)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"emit value is not encodable as JSON: {detail}")

    def outcome(self) -> Outcome:
        return Dead(str(self))


class StateError(WactorError):
    """A state call failed (see the subclasses)."""


class StateRejected(StateError):
    """The host refused a state write (a key over 4096 bytes, or more keys or
    bytes in one call than ``[limits] max_state_writes`` / ``max_state_bytes``
    allow). Nothing was written; the call's earlier writes stay pending.
    ``err.host_reason`` is the host's text; the reason is ``state write
    rejected: <host reason>``. Outcome: ``Retry``."""

    def __init__(self, host_reason: str) -> None:
        self.host_reason = host_reason
        super().__init__(f"state write rejected: {host_reason}")


class StateDecodeError(StateError, ValueError):
    """The value stored under ``err.key`` is not JSON. Outcome: ``Retry`` (a
    fixed version can read it; later events of the key wait)."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(f"state {key} does not decode: {detail}")


class StateEncodeError(StateError, ValueError):
    """The value given to ``state.set_json`` is not encodable as JSON.
    Outcome: ``Dead``."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(f"state {key} does not encode: {detail}")

    def outcome(self) -> Outcome:
        return Dead(str(self))


class HttpError(WactorError):
    """No HTTP response arrived. A response with any status (4xx, 5xx
    included) is not an error. Outcome: ``Retry``; catch it (or a subclass)
    where a case deserves another outcome. ``err.detail`` is the text after
    the kind's prefix."""

    prefix = "HTTP request failed"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{self.prefix}: {detail}")


class HttpDenied(HttpError):
    """The host refused to send the request (``HTTP-request-denied``): the
    destination is not on the actor's allow-list (manifest ``allowed_hosts``,
    ``wactor invoke --allow-host``).

    With ``host`` (``host:port``, as the allow-list matches it; the real
    host always gives it) the reason names it and the fix: ``HTTP request
    to 127.0.0.1:7781 denied: the host is not in the actor's allowed_hosts
    (actor.toml) or --allow-host (wactor invoke)``; ``err.host`` is it.
    Without (``HttpDenied("ErrorCode::HttpRequestDenied")``, as tests
    script it): ``HTTP request denied by the host: <detail>``."""

    prefix = "HTTP request denied by the host"

    def __init__(self, detail: str, host: Optional[str] = None) -> None:
        self.host = host
        if host is None:
            super().__init__(detail)
            return
        self.detail = detail
        WactorError.__init__(self, denied_reason(host))


def denied_reason(host: str) -> str:
    """The reason of a request to ``host`` (``host:port``) that the
    allow-list refused."""
    return (
        f"HTTP request to {host} denied: the host is not in the actor's allowed_hosts "
        "(actor.toml) or --allow-host (wactor invoke)"
    )


def host_port(scheme: str, authority: str) -> str:
    """``authority`` with the port the request connects to, as the host's
    allow-list matches it: the URL's, else 443 for ``https`` and 80 for
    ``http``."""
    end = authority.rfind("]")  # an IPv6 literal: [::1]:8080
    if ":" in authority[end + 1:]:
        return authority
    return f"{authority}:{443 if scheme.lower() == 'https' else 80}"


class HttpTimeout(HttpError):
    """The exchange did not finish within the request's ``timeout_ms``, or the
    host reported a connect/read/response timeout."""

    prefix = "HTTP request timed out"


class HttpInvalidUrl(HttpError):
    """The URL does not parse, or is not ``http``/``https``."""

    prefix = "invalid URL"


class HttpInvalidRequest(HttpError):
    """The request could not be built (a bad method or header, a body of the
    wrong type, a JSON body that does not encode)."""

    prefix = "invalid HTTP request"


class HttpTransport(HttpError):
    """Any other failure (connection refused, DNS, TLS, a broken stream):
    the ``wasi:http`` error code, e.g. ``ErrorCode::ConnectionRefused``."""

    prefix = "HTTP request failed"
