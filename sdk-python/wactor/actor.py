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
- letting any other exception escape (any ``BaseException``:
  ``SystemExit``, ``KeyboardInterrupt`` and custom ones too):
  ``Retry("<Type>: <message>")`` (one line) and the traceback logged at
  ERROR, instead of a trap. A trap (the deadline, the memory limit) still
  ends the call as the host sees fit.

Returning anything else is a bug in the actor: ``Retry`` with a reason that
says so, and an ERROR log line.

An actor whose actor.toml says ``batch = true`` is built against the world
``actor-batch``: the host may then hand it many events in one call
(``handle_batch``, docs/actors.md "Batches"), and the function still sees
one event at a time, its emits and state writes kept apart per event by
the host. Nothing changes in the function.

The wrapper is total: whatever the handler raises or returns, reading it
cannot raise out of the export (which would trap). An exception whose
``__str__`` (or ``__repr__``, or whose traceback formatting) raises gives
``Retry("<Type> (its message could not be read)")``; an SDK error whose
``outcome()`` fails is treated like any other exception; an outcome whose
fields are not a str reason and an int delay is a ``Retry`` that says so.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, Optional

from . import log
from .errors import WactorError
from .event import Event
from .outcome import Dead, Done, Outcome, Retry

__all__ = ["actor", "run_handler", "handler_of", "checked", "UNREADABLE"]

# The `batch` import exists only in a component of the world `actor-batch`
# (actor.toml: `batch = true`). It is imported here, while componentize-py
# imports the actor at build time: a module first imported during a call
# is not in the component's snapshot and cannot be found then.
try:
    from wit_world.imports import batch as _batch
except ImportError:  # world `actor`, or plain CPython
    _batch = None

Handler = Callable[[Event], Optional[Outcome]]


#: The reason when nothing at all can be read from what was raised.
UNREADABLE = "unhandled exception (its message could not be read)"


def _type_name(value: Any) -> str:
    try:
        name = type(value).__name__
        if isinstance(name, str) and name:
            return str.__str__(name)
    except BaseException:  # a metaclass with a hostile __name__
        pass
    return "exception"


def _one_line(err: BaseException) -> str:
    """``<Type>: <message>`` on one line; never raises (``<Type> (its
    message could not be read)`` when ``str(err)`` fails)."""
    name = _type_name(err)
    try:
        text = str(err)
        text = " ".join(str.split(str.__str__(text)))
    except BaseException:
        return f"{name} (its message could not be read)"
    return f"{name}: {text}" if text else name


def _traceback_text(err: BaseException) -> str:
    """The formatted traceback, or as much of it as can be read."""
    try:
        return "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
    except BaseException:
        pass
    try:
        return "".join(traceback.format_tb(err.__traceback__)).rstrip() + f"\n{_one_line(err)}"
    except BaseException:
        return _one_line(err)


def _log_quietly(level: str, message: str) -> None:
    try:
        log.log(level, message)
    except BaseException:  # no host to log to: the outcome still carries the reason
        pass


def _unhandled(err: BaseException) -> Outcome:
    """The outcome of an exception that is not an outcome or an SDK error:
    ``Retry`` with its one line, the traceback logged. Never raises."""
    try:
        _log_quietly("error", f"unhandled exception in handle: {_traceback_text(err)}")
        return Retry(_one_line(err))
    except BaseException:
        return Retry(UNREADABLE)


def checked(outcome: Any) -> Outcome:
    """``outcome`` if it is a ``Done``/``Retry``/``Dead`` whose reason is a
    str and delay an int in range (what the host can be given without a
    trap); anything else, or anything unreadable, becomes a ``Retry`` that
    says so. Never raises."""
    try:
        if isinstance(outcome, Done):
            return outcome
        if isinstance(outcome, Retry):
            reason, delay = outcome.reason, outcome.delay_ms
            if isinstance(reason, str) and (
                delay is None or (isinstance(delay, int) and not isinstance(delay, bool) and 0 <= delay < 2**64)
            ):
                return outcome
            return Retry(f"the handler's {_type_name(outcome)} has a reason that is not str or a delay that is not an int of milliseconds")
        if isinstance(outcome, Dead):
            if isinstance(outcome.reason, str):
                return outcome
            return Retry(f"the handler's {_type_name(outcome)} has a reason that is not str")
        return Retry(f"the handler ended with {_type_name(outcome)}, not an outcome")
    except BaseException:
        return Retry("the handler ended with an outcome that could not be read")


def run_handler(handler: Handler, event: Event) -> Outcome:
    """Calls ``handler(event)`` and returns the outcome it ends with, by the
    rules of this module's docstring. Never raises, whatever the handler
    raises or returns."""
    try:
        return checked(_run(handler, event))
    except BaseException:  # pragma: no cover - _run and checked do not raise
        return Retry(UNREADABLE)


def _run(handler: Handler, event: Event) -> Outcome:
    try:
        result = handler(event)
    except Outcome as outcome:
        return outcome
    except WactorError as err:
        try:
            return err.outcome()
        except BaseException:
            return _unhandled(err)
    except BaseException as err:  # noqa: B036 - any exception, SystemExit and KeyboardInterrupt too
        return _unhandled(err)
    try:
        if result is None:
            return Done()
        if isinstance(result, Outcome):
            return result
        reason = f"handle returned {_type_name(result)}, not an outcome (Done(), Retry(...) or Dead(...))"
    except BaseException:
        reason = "handle returned a value that could not be read, not an outcome (Done(), Retry(...) or Dead(...))"
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

            try:
                outcome = run_handler(handler, _wasi.event_from_wit(event))
                return _wasi.outcome_to_wit(outcome)
            except BaseException:  # never a trap: run_handler does not raise, this is the last guard
                return _wasi.outcome_to_wit(Retry(UNREADABLE))

        def handle_batch(self, events: Any) -> Any:
            """The ``handle-batch`` export of world ``actor-batch`` (built
            when actor.toml says ``batch = true``; in world ``actor`` it is
            never called). Runs the handler on each event in order, telling
            the host which event the emits and state writes that follow
            belong to (``batch.begin-event``), and returns one outcome per
            event, each decided exactly as ``handle`` decides it."""
            outcomes = []
            for index, event in enumerate(events):
                if _batch is not None:  # always, in world actor-batch
                    _batch.begin_event(index)
                outcomes.append(self.handle(event))
            return outcomes

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
