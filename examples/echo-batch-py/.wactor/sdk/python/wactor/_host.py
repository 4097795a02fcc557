"""Which host the SDK talks to: the real one (the component's WIT imports)
or a stand-in installed by ``wactor.testing``.

This module owns that choice and nothing else. Every other module of the SDK
calls ``current()`` and uses the object it returns (a "backend") through
these methods (bytes are ``bytes``, header values ``bytes`` or ``None``):

- ``log(level: str, message: str)``: level is trace, debug, info, warn, error
- ``emit(topic: str, key: bytes|None, payload: bytes|None,
  headers: list[tuple[str, bytes|None]])``: raises ``HostRefused(reason)``
- ``state_get(key) -> bytes|None``; ``state_set(key, value: bytes)`` and
  ``state_delete(key)``: raise ``HostRefused(reason)``
- ``config_get(key) -> str|None``; ``config_all() -> list[tuple[str, str]]``
- ``http_send(request: wactor.http.Request) -> wactor.http.Response``:
  raises ``wactor.errors.HttpError``

Inside a component (built with componentize-py), the bindings module
``wit_world`` exists and the real backend (``wactor._wasi``) is used. Under
plain CPython it does not, so the SDK can be imported (``import app`` in a
unit test works); calling the host without ``wactor.testing`` then raises
``NoHost``.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["HostRefused", "NoHost", "current", "install"]


class HostRefused(Exception):
    """The host answered a call with ``err(reason)`` (``emit.send``,
    ``state.set``, ``state.delete``). Internal: the public modules turn it
    into ``EmitRejected`` or ``StateRejected``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class NoHost(RuntimeError):
    """The SDK was called outside a component and outside ``wactor.testing``."""


class _Unavailable:
    """The backend of plain CPython: every call says how to get a host."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise NoHost(
                f"wactor: no host for {name}(): this is plain Python, not a component. "
                "Run the handler through wactor.testing.run(...) in unit tests."
            )

        return fail


_backend: Optional[Any] = None


def _default() -> Any:
    try:
        import wit_world  # noqa: F401  (present only inside a componentize-py build)
    except ImportError:
        return _Unavailable()
    from . import _wasi

    return _wasi.WasiHost()


def current() -> Any:
    """The backend in use: the installed one, else the component's imports,
    else one that raises ``NoHost``."""
    global _backend
    if _backend is None:
        _backend = _default()
    return _backend


def install(backend: Optional[Any]) -> Optional[Any]:
    """Makes ``backend`` the one in use (``None``: choose again on next use)
    and returns the previous one (``None`` if none was chosen yet)."""
    global _backend
    previous = _backend
    _backend = backend
    return previous
