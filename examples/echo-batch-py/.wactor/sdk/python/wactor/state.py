"""The actor's own key-value state, kept by the host.

This module owns the ``wactor:actor/state`` import. Each actor has its own
namespace, scoped by the source partition of the event (docs/actors.md,
"State lives with the partition"). Reads see the writes this call has made
so far; writes are applied only if the call returns ``Done``, so a retried
call sees the state as it was before the failed attempt::

    from wactor import state

    if state.get("seen:42") is None:
        state.set("seen:42", b"1")
    totals = state.get_json("totals", default=[])
    totals.append(3)
    state.set_json("totals", totals)
    state.delete("seen:41")

Keys are str (at most 4096 UTF-8 bytes); values are bytes (str is encoded
as UTF-8). A refused write raises ``StateRejected`` (outcome ``Retry``)
and changes nothing.
"""

from __future__ import annotations

import json as _json
from typing import Any, Optional

from . import _host, _jsonlimit
from .errors import StateDecodeError, StateEncodeError, StateError, StateRejected
from .event import Bytesish, _to_bytes

__all__ = ["get", "set", "delete", "get_json", "set_json", "StateError", "StateRejected", "StateDecodeError", "StateEncodeError"]

_MISSING: Any = object()


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a state key must be str, not {type(key).__name__}")
    return key


def get(key: str) -> Optional[bytes]:
    """The bytes stored under ``key``, or ``None`` when it is not set."""
    return _host.current().state_get(_check_key(key))


def set(key: str, value: Bytesish) -> None:  # noqa: A001  (mirrors the WIT and the Rust SDK)
    """Stores ``value`` (bytes, or str as UTF-8) under ``key``, applied if
    the call is done. Raises ``StateRejected`` (outcome ``Retry``), writing
    nothing, when the host refuses: a key over 4096 bytes, or a per-call
    limit (``max_state_writes``, ``max_state_bytes``)."""
    data = _to_bytes(value, "a state value")
    try:
        _host.current().state_set(_check_key(key), data)
    except _host.HostRefused as err:
        raise StateRejected(err.reason) from None


def delete(key: str) -> None:
    """Removes ``key`` (applied if the call is done). Raises like ``set``."""
    try:
        _host.current().state_delete(_check_key(key))
    except _host.HostRefused as err:
        raise StateRejected(err.reason) from None


def get_json(key: str, default: Any = None) -> Any:
    """The value under ``key`` decoded from JSON, or ``default`` when the
    key is not set. Raises ``StateDecodeError`` (outcome ``Retry``) when the
    stored bytes are not JSON, or JSON nested deeper than 512 arrays/objects
    (``state <key> does not decode: nested deeper than 512``: not parsed,
    since that would exhaust the component's stack, a trap)."""
    data = get(key)
    if data is None:
        return default
    try:
        return _jsonlimit.loads(data)
    except ValueError as err:
        raise StateDecodeError(key, str(err)) from None


def set_json(key: str, value: Any) -> None:
    """Stores ``value`` encoded as compact JSON under ``key``. Raises
    ``StateEncodeError`` (outcome ``Dead``) when it is not JSON-encodable,
    ``StateRejected`` (outcome ``Retry``) when the host refuses the write."""
    try:
        data = _json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise StateEncodeError(key, str(err)) from None
    set(key, data)
