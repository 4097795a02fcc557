"""Typed decoding of parsed JSON into dataclasses (``Event.json(into=...)``).

This module owns the rules, which follow serde's defaults as the Rust SDK
uses them: a field without a default must be present (``missing field
`name```), a present field must have the declared type (``invalid type at
`amount.value`: expected int, found str``), unknown keys are ignored.

Supported annotations: a dataclass (nested too), ``str``, ``int`` (not
``bool``), ``float`` (an int is accepted), ``bool``, ``None``,
``Optional[T]`` / ``T | None`` (and other unions, tried in order),
``list[T]`` / ``List[T]``, ``dict[str, T]`` / ``Dict[str, T]``, ``Any`` /
``object`` (taken as is), plain ``list`` and ``dict``.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any

__all__ = ["DecodeError", "decode"]


class DecodeError(ValueError):
    """The value does not have the declared shape; the text says where."""


def _name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _found(value: Any) -> str:
    return {
        type(None): "null",
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _at(path: str) -> str:
    return f" at `{path}`" if path else ""


def decode(value: Any, tp: Any, path: str = "") -> Any:
    """Returns ``value`` (parsed JSON) as an instance of ``tp``, or raises
    ``DecodeError``. ``path`` names the position in error texts."""
    if tp is Any or tp is object:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(value, tp, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        errors = []
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return decode(value, option, path)
            except DecodeError as err:
                errors.append(str(err))
        expected = " or ".join(_name(a) for a in args)
        if len(errors) == 1:
            raise DecodeError(errors[0])
        raise DecodeError(f"invalid type{_at(path)}: expected {expected}, found {_found(value)}")
    if origin in (list, typing.List) or tp is list:
        if not isinstance(value, list):
            raise DecodeError(f"invalid type{_at(path)}: expected list, found {_found(value)}")
        if not args:
            return value
        return [decode(item, args[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if origin in (dict, typing.Dict) or tp is dict:
        if not isinstance(value, dict):
            raise DecodeError(f"invalid type{_at(path)}: expected object, found {_found(value)}")
        if len(args) != 2:
            return value
        return {k: decode(v, args[1], f"{path}.{k}" if path else k) for k, v in value.items()}
    if tp is type(None) or tp is None:
        if value is not None:
            raise DecodeError(f"invalid type{_at(path)}: expected null, found {_found(value)}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"invalid type{_at(path)}: expected bool, found {_found(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"invalid type{_at(path)}: expected int, found {_found(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DecodeError(f"invalid type{_at(path)}: expected float, found {_found(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise DecodeError(f"invalid type{_at(path)}: expected str, found {_found(value)}")
        return value
    raise TypeError(f"wactor: cannot decode JSON into {_name(tp)} (unsupported annotation)")


def _decode_dataclass(value: Any, tp: type, path: str) -> Any:
    if not isinstance(value, dict):
        raise DecodeError(f"invalid type{_at(path)}: expected object ({tp.__name__}), found {_found(value)}")
    hints = typing.get_type_hints(tp)
    kwargs = {}
    for field in dataclasses.fields(tp):
        if not field.init:
            continue
        where = f"{path}.{field.name}" if path else field.name
        if field.name not in value:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise DecodeError(f"missing field `{where}`")
            continue
        kwargs[field.name] = decode(value[field.name], hints.get(field.name, Any), where)
    return tp(**kwargs)
