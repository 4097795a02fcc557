"""wactor: the Python guest SDK for wactor actors.

An actor is a WebAssembly component that the wactor host calls once per
Kafka event. This package wraps the ``wactor:actor@0.2.0`` WIT contract (as
componentize-py binds it) in plain Python, so that an actor is one
function in ``app.py``::

    from wactor import Event, Done, Retry, Dead, actor, emit, state, config, log

    @actor
    def handle(event: Event):
        order = event.json()                       # malformed payload => Dead
        if state.get(f"seen:{order['id']}") is not None:
            return Done()                          # a redelivery
        emit.send_json(config.get("out_topic", "orders.seen"), order)
        state.set(f"seen:{order['id']}", b"1")     # refused write => Retry
        log.info(f"saw order {order['id']}")
        return Done()

Build it with componentize-py (see README.md)::

    componentize-py -d <wactor>/wit -w actor componentize app -p . -p <sdk-python> -o app.wasm

Layout (each module's docstring has the details):

- ``wactor.event``: ``Event``, the typed Kafka record (``json()``,
  ``payload_str()``, ``key_str()``, ``header()``...).
- ``wactor.outcome``: ``Done``, ``Retry``, ``Dead`` (values and exceptions).
- ``wactor.actor``: ``@actor`` and the rules that map what the handler does
  (returns, raises) onto an outcome.
- ``wactor.errors``: the SDK's exceptions and the outcome of each.
- ``wactor.emit``: ``Record``, ``send``, ``send_json``.
- ``wactor.state``: ``get``, ``set``, ``delete``, ``get_json``, ``set_json``.
- ``wactor.config``: ``get``, ``require``, ``all``.
- ``wactor.log``: ``trace``, ``debug``, ``info``, ``warn``, ``error``.
- ``wactor.http``: ``request``, ``get``, ``post``... over ``wasi:http``.
- ``wactor.testing``: a fake host to run the same ``app.py`` under plain
  CPython unit tests.

Effects are transactional: emits and state writes are applied only when the
call ends ``Done``. HTTP calls are not: send an idempotency key.
"""

from . import config, emit, errors, http, log, state
from .actor import actor
from .emit import Record
from .errors import (
    EmitEncodeError,
    EmitRejected,
    HttpError,
    MissingConfig,
    PayloadError,
    StateRejected,
    WactorError,
)
from .event import Event
from .outcome import Dead, Done, Outcome, Retry

__version__ = "0.1.0"

#: The WIT contract this SDK is built for.
CONTRACT = "wactor:actor@0.2.0"

__all__ = [
    "actor",
    "Event",
    "Outcome",
    "Done",
    "Retry",
    "Dead",
    "Record",
    "emit",
    "state",
    "config",
    "log",
    "http",
    "errors",
    "WactorError",
    "PayloadError",
    "MissingConfig",
    "EmitRejected",
    "EmitEncodeError",
    "StateRejected",
    "HttpError",
    "CONTRACT",
]

# Inside a componentize-py build the bindings exist while `app` is imported
# (at build time, before the snapshot): import the real host then, since
# componentize-py keeps only what was imported by then. Under plain CPython
# there is no `wit_world` and the SDK runs on wactor.testing's fake host.
try:
    import wit_world as _wit_world  # noqa: F401
except ImportError:
    pass
else:
    from . import _wasi  # noqa: F401
