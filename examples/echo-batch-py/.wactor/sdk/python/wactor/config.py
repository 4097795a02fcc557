"""The actor's configuration values, from the ``[config]`` table of its
manifest (or ``wactor invoke --config k=v``).

This module owns the ``wactor:actor/config`` import. Values are str; parse
them yourself::

    from wactor import config

    url = config.require("wallet_url")           # missing => Dead
    topic = config.get("out_topic", "results")   # with a default
    limit = int(config.get("limit", "10"))
"""

from __future__ import annotations

from typing import Dict, Optional, TypeVar, Union, overload

from . import _host
from .errors import MissingConfig

__all__ = ["get", "require", "all", "MissingConfig"]

D = TypeVar("D")


@overload
def get(key: str) -> Optional[str]: ...


@overload
def get(key: str, default: D) -> Union[str, D]: ...


def get(key: str, default: object = None) -> object:
    """The value of ``key``, or ``default`` (``None`` unless given) when it
    is not configured."""
    value = _host.current().config_get(key)
    return default if value is None else value


def require(key: str) -> str:
    """The value of ``key``. Raises ``MissingConfig`` (outcome ``Dead``,
    reason ``config <key> is not set``) when it is not configured."""
    value = _host.current().config_get(key)
    if value is None:
        raise MissingConfig(key)
    return value


def all() -> Dict[str, str]:  # noqa: A001  (mirrors the Rust SDK)
    """Every configured key and value."""
    return dict(_host.current().config_all())
