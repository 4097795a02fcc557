"""Log lines, routed into the host's tracing with the actor, version and
event attached (``wactor invoke`` prints them under ``logs:``).

This module owns the ``wactor:actor/logging`` import::

    from wactor import log

    log.info(f"reversed {reservation}")
    log.warn("wallet slow: %d ms", took)      # %-style arguments, as in `logging`

The event's topic, partition, offset and attempt are on the host's span
already; log what only the actor knows. The host keeps 1000 lines per call,
each cut at 4 KiB. ``print()`` works too (stdout is logged at INFO, stderr
at WARN) but has no level.
"""

from __future__ import annotations

from typing import Any

from . import _host

__all__ = ["LEVELS", "log", "trace", "debug", "info", "warn", "warning", "error"]

#: The levels, least serious first.
LEVELS = ("trace", "debug", "info", "warn", "error")


def _format(message: Any, args: tuple) -> str:
    text = str(message)
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = " ".join([text, *map(str, args)])
    return text


def log(level: str, message: Any, *args: Any) -> None:
    """Writes one line at ``level`` (one of ``LEVELS``; ``warning`` is
    ``warn``). ``message % args`` when ``args`` are given."""
    level = "warn" if level == "warning" else level
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (expected one of {', '.join(LEVELS)})")
    _host.current().log(level, _format(message, args))


def trace(message: Any, *args: Any) -> None:
    """Logs at TRACE."""
    log("trace", message, *args)


def debug(message: Any, *args: Any) -> None:
    """Logs at DEBUG."""
    log("debug", message, *args)


def info(message: Any, *args: Any) -> None:
    """Logs at INFO."""
    log("info", message, *args)


def warn(message: Any, *args: Any) -> None:
    """Logs at WARN."""
    log("warn", message, *args)


warning = warn


def error(message: Any, *args: Any) -> None:
    """Logs at ERROR."""
    log("error", message, *args)
