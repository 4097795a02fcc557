"""Records to publish to Kafka when the call returns ``Done``.

This module owns the ``wactor:actor/emit`` import. Records are queued by the
host and produced only after the call is done; on ``Retry``, ``Dead`` or a
trap they are dropped::

    from wactor import emit
    from wactor.emit import Record

    emit.send(Record("audit.log", "user deleted"))        # the source key is used
    emit.send(Record.json("users.changed", {"id": 7}, key="7", headers={"schema": "v1"}))
    emit.send_json("users.count", {"count": 12})
    emit.send(Record.tombstone("users.compacted", key="7"))  # a null value
    emit.send(Record("reminders", "pay", delay_ms=60_000))   # delivered a minute after the call

``send`` raises ``EmitRejected`` (outcome ``Retry``) when the host refuses a
record, ``send_json``/``Record.json`` raise ``EmitEncodeError`` (outcome
``Dead``) for a value that is not JSON.
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from . import _host
from .errors import EmitEncodeError, EmitError, EmitRejected
from .event import Bytesish, HeaderValue, _to_bytes, headers_from

__all__ = ["Record", "send", "send_json", "DELAY_HEADER", "DELIVER_AT_HEADER", "EmitError", "EmitRejected", "EmitEncodeError"]

#: The header a delayed record carries (milliseconds after the call ends).
DELAY_HEADER = "wactor-delay-ms"
#: The header of a record delivered at a given time (ms since the Unix epoch).
DELIVER_AT_HEADER = "wactor-deliver-at"

Headers = Union[None, Mapping[str, HeaderValue], Iterable[Tuple[str, HeaderValue]]]


def _whole_ms(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int (milliseconds), not {type(value).__name__}")
    return value


class Record:
    """One record to publish.

    Args:
        topic (str): the destination topic.
        payload (bytes | str | None): the value; str is encoded as UTF-8;
            ``None`` is a tombstone (a null value).
        key (bytes | str | None): the record's key; ``None`` uses the source
            event's key, so follow-up events keep its per-key order.
        headers (dict or list of (name, value)): values bytes, str or
            ``None`` (a null value). The host adds ``wactor-source`` and
            ``wactor-actor`` itself.
        delay_ms (int | None): deliver the record this many milliseconds
            after the call ends (at most 7 days; the host refuses more). Sets
            the header ``wactor-delay-ms``; like every emit it happens only
            if the call is done (docs/delivery.md, "Delayed emits").
        deliver_at_ms (int | None): deliver it at this time (ms since the
            Unix epoch; a past time means at once; at most 7 days ahead).
            Sets the header ``wactor-deliver-at``.

    Attributes ``topic``, ``key``, ``payload`` and ``headers`` (a list of
    (str, bytes | None)) hold the record as it will be sent.
    """

    __slots__ = ("topic", "key", "payload", "headers")

    def __init__(
        self,
        topic: str,
        payload: Optional[Bytesish],
        *,
        key: Optional[Bytesish] = None,
        headers: Headers = None,
        delay_ms: Optional[int] = None,
        deliver_at_ms: Optional[int] = None,
    ) -> None:
        if not isinstance(topic, str):
            raise TypeError(f"a record's topic must be str, not {type(topic).__name__}")
        self.topic: str = topic
        self.payload: Optional[bytes] = None if payload is None else _to_bytes(payload, "a record's payload")
        self.key: Optional[bytes] = None if key is None else _to_bytes(key, "a record's key")
        self.headers: List[Tuple[str, Optional[bytes]]] = headers_from(headers)
        if delay_ms is not None:
            self.headers.append((DELAY_HEADER, str(_whole_ms(delay_ms, "delay_ms")).encode()))
        if deliver_at_ms is not None:
            self.headers.append((DELIVER_AT_HEADER, str(_whole_ms(deliver_at_ms, "deliver_at_ms")).encode()))

    @classmethod
    def json(cls, topic: str, value: Any, **kwargs: Any) -> "Record":
        """A record whose value is ``value`` encoded as compact JSON (UTF-8);
        keyword arguments as for ``Record``. Raises ``EmitEncodeError``
        (outcome ``Dead``) when ``value`` is not JSON-encodable."""
        try:
            payload = _json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise EmitEncodeError(str(err)) from None
        return cls(topic, payload, **kwargs)

    @classmethod
    def tombstone(cls, topic: str, **kwargs: Any) -> "Record":
        """A tombstone for ``topic``: a null value, which deletes its key
        from a compacted topic (the source event's key unless ``key=``)."""
        return cls(topic, None, **kwargs)

    def is_tombstone(self) -> bool:
        """Whether the record's value is null."""
        return self.payload is None

    def _fields(self) -> tuple:
        return (self.topic, self.key, self.payload, self.headers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record(topic={self.topic!r}, key={self.key!r}, payload={self.payload!r}, headers={self.headers!r})"


def send(record: Record) -> None:
    """Queues ``record`` for publishing when the call returns ``Done``.

    Raises ``EmitRejected`` (outcome ``Retry``) when the host refuses it: a
    topic name Kafka or the host does not allow (docs/actors.md, "Topics an
    actor may not emit to"), a delay over 7 days, or more records or bytes
    than the call may emit (``[limits] max_emits``/``max_emit_bytes``).
    Records queued before stay queued.
    """
    if not isinstance(record, Record):
        raise TypeError(f"emit.send takes a Record, not {type(record).__name__}")
    try:
        _host.current().emit(record.topic, record.key, record.payload, list(record.headers))
    except _host.HostRefused as err:
        raise EmitRejected(err.reason) from None


def send_json(topic: str, value: Any, **kwargs: Any) -> None:
    """Queues a record for ``topic`` whose value is ``value`` as JSON
    (``Record.json(topic, value, **kwargs)``); raises as ``Record.json`` and
    ``send`` do."""
    send(Record.json(topic, value, **kwargs))
