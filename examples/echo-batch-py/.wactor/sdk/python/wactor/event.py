"""``Event``: the Kafka record an actor is called with, and the helpers to
read its key, payload and headers.

This module owns decoding the payload (``Event.json``, ``PayloadError``) and
reading the ``wactor invoke`` event-file format (``Event.from_dict``); it
does not talk to the host.
"""

from __future__ import annotations

import base64
import json as _json
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar, Union, overload

from . import _jsonlimit
from ._decode import DecodeError, decode
from .errors import PayloadError

__all__ = ["Event", "PayloadError"]

T = TypeVar("T")
Bytesish = Union[bytes, bytearray, memoryview, str]
HeaderValue = Optional[Bytesish]


def _to_bytes(value: Bytesish, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


def headers_from(headers: Union[None, Mapping[str, HeaderValue], Iterable[Tuple[str, HeaderValue]]]) -> List[Tuple[str, Optional[bytes]]]:
    """Header pairs (name, bytes|None) from a dict or a list of pairs whose
    values are bytes, str (UTF-8) or ``None`` (a null value)."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"a header name must be str, not {type(name).__name__}")
        out.append((name, None if value is None else _to_bytes(value, f"header {name!r}")))
    return out


class Event:
    """One Kafka record, as delivered to an actor.

    Attributes:
        topic (str): the topic the record was read from.
        partition (int): the partition within ``topic``.
        offset (int): the record's offset within its partition.
        timestamp_ms (int | None): the record's timestamp in milliseconds
            since the Unix epoch, when the broker reported one.
        key (bytes | None): the record's key. Events with the same key are
            delivered in order (in the default ``key`` ordering mode).
        payload (bytes | None): the record's value: ``None`` for a null
            value (a tombstone, which deletes its key in a compacted topic),
            ``b""`` for an empty value, which is not a tombstone.
        headers (list[tuple[str, bytes | None]]): (name, value) in the
            producer's order; names may repeat; ``None`` is a null value.
        attempt (int): 1 for the first delivery, 2 for the first retry, ...

    The constructor is for tests (``Event("orders", '{"id": 1}', key="o-1")``):
    str payloads, keys and header values are encoded as UTF-8.
    """

    __slots__ = ("topic", "partition", "offset", "timestamp_ms", "key", "payload", "headers", "attempt")

    def __init__(
        self,
        topic: str = "dev",
        payload: Optional[Bytesish] = b"",
        *,
        key: Optional[Bytesish] = None,
        headers: Union[None, Mapping[str, HeaderValue], Iterable[Tuple[str, HeaderValue]]] = None,
        partition: int = 0,
        offset: int = 0,
        timestamp_ms: Optional[int] = None,
        attempt: int = 1,
    ) -> None:
        self.topic: str = topic
        self.partition: int = partition
        self.offset: int = offset
        self.timestamp_ms: Optional[int] = timestamp_ms
        self.key: Optional[bytes] = None if key is None else _to_bytes(key, "key")
        self.payload: Optional[bytes] = None if payload is None else _to_bytes(payload, "payload")
        self.headers: List[Tuple[str, Optional[bytes]]] = headers_from(headers)
        self.attempt: int = attempt

    @classmethod
    def tombstone(cls, topic: str = "dev", **kwargs: Any) -> "Event":
        """A tombstone (null value) built by hand, for tests."""
        return cls(topic, None, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Event":
        """An event from the ``wactor invoke --event`` file format (see
        docs/actors.md): ``topic`` (default ``dev``), ``partition``,
        ``offset``, ``timestamp_ms``, ``key`` or ``key_base64``, ``headers``
        (an object or a list of ``[name, value]``, ``null`` for a null
        value), one of ``payload`` (any JSON value, sent as compact JSON;
        ``null`` is a tombstone), ``payload_text`` or ``payload_base64`` (no
        payload at all: an empty value), ``attempt`` (default 1). Unknown
        fields raise ``ValueError``, as ``wactor invoke`` refuses them."""
        known = {"topic", "partition", "offset", "timestamp_ms", "key", "key_base64", "headers",
                 "payload", "payload_text", "payload_base64", "attempt"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown event field(s): {', '.join(unknown)}")
        given = [name for name in ("payload", "payload_text", "payload_base64") if name in data]
        if len(given) > 1:
            raise ValueError(f"an event has one payload, got {', '.join(given)}")
        payload: Optional[bytes] = b""
        if "payload" in data:
            value = data["payload"]
            payload = None if value is None else _json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        elif "payload_text" in data:
            payload = str(data["payload_text"]).encode("utf-8")
        elif "payload_base64" in data:
            payload = base64.b64decode(data["payload_base64"])
        if "key" in data and "key_base64" in data:
            raise ValueError("an event has one key, got key and key_base64")
        key: Optional[bytes] = None
        if data.get("key") is not None:
            key = str(data["key"]).encode("utf-8")
        elif data.get("key_base64") is not None:
            key = base64.b64decode(data["key_base64"])
        return cls(
            data.get("topic", "dev"),
            payload,
            key=key,
            headers=data.get("headers"),
            partition=int(data.get("partition", 0)),
            offset=int(data.get("offset", 0)),
            timestamp_ms=data.get("timestamp_ms"),
            attempt=int(data.get("attempt", 1)),
        )

    def is_tombstone(self) -> bool:
        """Whether the value is null (a tombstone). An empty value is not."""
        return self.payload is None

    def payload_bytes(self) -> bytes:
        """The value as bytes; ``b""`` for a tombstone (use
        ``is_tombstone()`` to tell the two apart)."""
        return self.payload if self.payload is not None else b""

    def payload_str(self) -> str:
        """The value as text. Raises ``PayloadError`` (outcome ``Dead``) when
        it is not UTF-8."""
        try:
            return self.payload_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise PayloadError(f"payload is not UTF-8: {err}") from None

    @overload
    def json(self) -> Any: ...

    @overload
    def json(self, into: Type[T]) -> T: ...

    def json(self, into: Any = None) -> Any:
        """The value decoded as JSON: dicts, lists, str, int, float, bool,
        None; with ``into`` (a dataclass, or an annotation such as
        ``list[str]``) the result is checked and built as that type (missing
        fields, wrong types and a non-object are errors; unknown keys are
        ignored).

        A tombstone or empty value has no JSON to decode. Every failure
        raises ``PayloadError`` with a reason starting ``malformed JSON
        payload:`` (e.g. ``malformed JSON payload: missing field
        `customer_id```), which ends the call ``Dead``. That includes a
        document nested deeper than 512 arrays/objects (``malformed JSON
        payload: nested deeper than 512``), refused before parsing: parsing
        it would exhaust the component's stack, a trap.
        """
        text = self.payload_str()
        try:
            value = _jsonlimit.loads(text)
        except ValueError as err:
            raise PayloadError(f"malformed JSON payload: {err}") from None
        if into is None:
            return value
        try:
            return decode(value, into)
        except DecodeError as err:
            raise PayloadError(f"malformed JSON payload: {err}") from None

    def key_str(self) -> Optional[str]:
        """The key as text: ``None`` when there is no key or it is not UTF-8."""
        if self.key is None:
            return None
        try:
            return self.key.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def header(self, name: str) -> Optional[bytes]:
        """The value of the first header called ``name`` (case-sensitive, as
        Kafka's): ``None`` when absent or null (``has_header`` tells them
        apart)."""
        for header, value in self.headers:
            if header == name:
                return value
        return None

    def has_header(self, name: str) -> bool:
        """Whether a header called ``name`` is present, a null one included."""
        return any(header == name for header, _ in self.headers)

    def header_str(self, name: str) -> Optional[str]:
        """``header(name)`` as text: ``None`` when absent, null or not UTF-8."""
        value = self.header(name)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Event(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"key={self.key!r}, payload={self.payload!r}, headers={self.headers!r}, "
            f"timestamp_ms={self.timestamp_ms!r}, attempt={self.attempt})"
        )
