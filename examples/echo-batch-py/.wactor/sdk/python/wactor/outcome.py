"""Outcomes: what became of one event (``Done``, ``Retry``, ``Dead``).

This module owns the outcome types and nothing else. An outcome is both a
value and an exception: ``return Retry("busy")`` from ``handle`` and
``raise Retry("busy")`` from any function it calls mean the same thing (the
Python spelling of the Rust SDK's ``Err(outcome)`` / ``?``).

- ``Done()``: applies the call's emits and state writes.
- ``Retry(reason, delay_ms=None)``: drops them; the event is tried again
  after ``delay_ms`` milliseconds (or the actor's backoff policy when
  ``None``); later events of its key wait.
- ``Dead(reason)``: drops them; the event is parked as a dead letter.
"""

from __future__ import annotations

import math
from typing import Optional

__all__ = ["Outcome", "Done", "Retry", "Dead"]


class Outcome(Exception):
    """Base of ``Done``, ``Retry`` and ``Dead``. Not instantiated directly.

    Outcomes compare by value (``Retry("x", 5) == Retry("x", 5)``), which is
    what unit tests want, and ``str(outcome)`` reads like ``wactor invoke``'s
    output (``done``, ``retry: why``, ``retry after 30000 ms: why``,
    ``dead: why``).
    """

    #: "done", "retry" or "dead".
    kind: str = ""

    def _fields(self) -> tuple:
        return ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._fields() == other._fields()  # type: ignore[union-attr]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    @property
    def is_done(self) -> bool:
        """Whether this is ``Done()``."""
        return self.kind == "done"


class Done(Outcome):
    """The event is handled: the host applies its emits and state writes.

    Returning ``None`` from ``handle`` (falling off its end) means ``Done()``
    too.
    """

    kind = "done"

    def __init__(self) -> None:
        super().__init__("done")

    def __repr__(self) -> str:
        return "Done()"

    def __str__(self) -> str:
        return "done"


class Retry(Outcome):
    """The event failed in a way worth trying again (a timeout, a 5xx).

    ``reason`` (str) is recorded in the event's attempt history and shown to
    operators (the host keeps at most 4 KiB of it). ``delay_ms`` (int
    milliseconds, or ``None``) is how long to wait before the next attempt;
    ``None`` lets the actor's retry policy choose (exponential backoff with
    jitter); the host caps it at the policy's maximum delay. A float is
    rounded up to whole milliseconds; a negative value is ``ValueError``.
    """

    kind = "retry"

    def __init__(self, reason: str, delay_ms: Optional[float] = None) -> None:
        if delay_ms is not None:
            if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)):
                raise TypeError(f"Retry delay_ms must be a number of milliseconds, not {type(delay_ms).__name__}")
            if delay_ms < 0 or (isinstance(delay_ms, float) and math.isnan(delay_ms)):
                raise ValueError(f"Retry delay_ms must not be negative: {delay_ms!r}")
            delay_ms = min(int(math.ceil(delay_ms)), 2**64 - 1)
        self.reason: str = str(reason)
        self.delay_ms: Optional[int] = delay_ms
        super().__init__(self.reason)

    def _fields(self) -> tuple:
        return (self.reason, self.delay_ms)

    def __repr__(self) -> str:
        if self.delay_ms is None:
            return f"Retry({self.reason!r})"
        return f"Retry({self.reason!r}, delay_ms={self.delay_ms})"

    def __str__(self) -> str:
        if self.delay_ms is None:
            return f"retry: {self.reason}"
        return f"retry after {self.delay_ms} ms: {self.reason}"


class Dead(Outcome):
    """The event can never succeed (a malformed payload, a 4xx that asking
    again cannot fix): skip the remaining attempts and park it in the
    dead-letter set with ``reason`` (str, cut by the host at 4 KiB)."""

    kind = "dead"

    def __init__(self, reason: str) -> None:
        self.reason: str = str(reason)
        super().__init__(self.reason)

    def _fields(self) -> tuple:
        return (self.reason,)

    def __repr__(self) -> str:
        return f"Dead({self.reason!r})"

    def __str__(self) -> str:
        return f"dead: {self.reason}"
