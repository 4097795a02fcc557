"""``@actor``: turns a function into the component's ``handle`` export, and
the rule that turns whatever the function does into an outcome.

This module owns the export side: componentize-py looks for a class named
``WitWorld`` in the module it builds (``app``), instantiates it and calls its
``handle(event)`` method with the WIT event. ``@actor`` creates that class
and puts it into the decorated function's module, so an actor is::

    from wactor import Event, Done, actor

    @actor
    def handle(event: Event):
        ...
        return Done()

The function gets an ``Event`` and ends the call by

- returning ``Done()``, ``Retry(reason, delay_ms=None)`` or ``Dead(reason)``
  (returning ``None`` is ``Done()``);
- raising one of them (from any depth: ``raise Dead("...")``);
- letting an SDK error escape: ``err.outcome()`` (``wactor.errors``: bad
  JSON and missing config are ``Dead``; refused emits and state writes and
  HTTP failures are ``Retry``);
- letting any other exception escape: ``Retry("<Type>: <message>")`` (one
  line) and the traceback logged at ERROR, instead of a trap. A trap (the
  deadline, the memory limit) still ends the call as the host sees fit.

Returning anything else is a bug in the actor: ``Retry`` with a reason that
says so, and an ERROR log line.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, Optional

from . import log
from .errors import WactorError
from .event import Event
from .outcome import Done, Outcome, Retry

__all__ = ["actor", "run_handler", "handler_of"]

Handler = Callable[[Event], Optional[Outcome]]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    name = type(err).__name__
    return f"{name}: {text}" if text else name


def _log_quietly(level: str, message: str) -> None:
    try:
        log.log(level, message)
    except Exception:  # no host to log to: the outcome still carries the reason
        pass


def run_handler(handler: Handler, event: Event) -> Outcome:
    """Calls ``handler(event)`` and returns the outcome it ends with, by the
    rules of this module's docstring. Never raises (except
    ``KeyboardInterrupt``/``GeneratorExit``)."""
    try:
        result = handler(event)
    except Outcome as outcome:
        return outcome
    except WactorError as err:
        return err.outcome()
    except (Exception, SystemExit) as err:
        _log_quietly("error", f"unhandled exception in handle: {''.join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()}")
        return Retry(_one_line(err))
    if result is None:
        return Done()
    if isinstance(result, Outcome):
        return result
    reason = f"handle returned {type(result).__name__}, not an outcome (Done(), Retry(...) or Dead(...))"
    _log_quietly("error", reason)
    return Retry(reason)


def actor(handle: Handler) -> Handler:
    """Decorator: makes ``handle`` (a function of one ``Event``) the actor of
    its module. Sets the module attribute ``WitWorld`` that componentize-py
    exports, and ``handle.WitWorld`` (the same class). Returns ``handle``
    unchanged, so tests can still call it or pass it to
    ``wactor.testing.run``. One ``@actor`` per module."""
    if not callable(handle):
        raise TypeError(f"@actor decorates a function of one Event, not {type(handle).__name__}")

    handler = handle

    class WitWorld:
        """The componentize-py export of the ``actor`` world (made by @actor)."""

        __wactor_handler__ = staticmethod(handler)

        def handle(self, event: Any) -> Any:
            from . import _wasi

            return _wasi.outcome_to_wit(run_handler(handler, _wasi.event_from_wit(event)))

    module = sys.modules.get(getattr(handle, "__module__", None) or "")
    if module is not None:
        existing = getattr(module, "WitWorld", None)
        previous = getattr(existing, "__wactor_handler__", None)
        if previous is not None and getattr(previous, "__qualname__", None) != getattr(handle, "__qualname__", None):
            raise RuntimeError(
                f"module {module.__name__} already has an @actor ({previous.__qualname__}); one per module"
            )
        setattr(module, "WitWorld", WitWorld)
    try:
        handle.WitWorld = WitWorld  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # a callable that takes no attributes
        pass
    return handle


def handler_of(target: Any) -> Handler:
    """The handler function behind ``target``: an ``@actor`` function, a
    module that has one (``import app; handler_of(app)``), its ``WitWorld``
    class, or any plain callable of one ``Event``."""
    world = getattr(target, "WitWorld", None) if not isinstance(target, type) else target
    handler = getattr(world, "__wactor_handler__", None)
    if handler is not None:
        return handler
    if callable(target) and not isinstance(target, type):
        return target
    raise TypeError(f"{target!r} is not an actor: decorate its handler with @wactor.actor")
