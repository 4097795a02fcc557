"""JSON from untrusted bytes, with its nesting depth bounded.

This module owns one rule: JSON nested deeper than ``MAX_DEPTH`` (512)
arrays/objects is refused before it is parsed. CPython's ``json`` parser
recurses once per level; inside a component the WebAssembly stack runs out
long before Python's recursion limit (a 10 KB payload of ``[`` is enough),
and that is a trap, which no ``except`` can catch. Refusing the document
first turns it into an ordinary error that each caller maps to its outcome
(``Event.json``: ``PayloadError``, dead; ``state.get_json``:
``StateDecodeError``, retry; ``Response.json``: ``ValueError``, retry when
uncaught).

The check is a scan of the brackets outside strings, done with ``re`` and
``itertools`` (C loops): documents with at most 512 ``[``/``{`` characters
in all skip it.
"""

from __future__ import annotations

import json as _json
import re
from itertools import accumulate
from typing import Any, Union

__all__ = ["MAX_DEPTH", "JsonTooDeep", "depth_exceeds", "loads"]

#: The deepest nesting of arrays and objects the SDK parses.
MAX_DEPTH = 512

# A JSON string (an unterminated one runs to the end), or a run of
# characters that are neither brackets nor quotes: what the scan drops.
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[^\[\]{}"]+', re.S)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than ``MAX_DEPTH``."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH}")


def depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether ``text`` (JSON, or a prefix of it) opens more than ``limit``
    arrays/objects at once, counting only brackets outside strings."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKETS.sub("", text)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def loads(data: Union[str, bytes, bytearray, memoryview]) -> Any:
    """``json.loads(data)`` (str, or bytes in UTF-8/16/32 as ``json.loads``
    reads them), raising ``JsonTooDeep`` (a ``ValueError``) instead of parsing
    a document nested deeper than ``MAX_DEPTH``. Every failure is a
    ``ValueError``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        data = data.decode(_json.detect_encoding(data), "surrogatepass")
    elif not isinstance(data, str):
        raise TypeError(f"JSON must be str or bytes, not {type(data).__name__}")
    if depth_exceeds(data):
        raise JsonTooDeep()
    try:
        return _json.loads(data)
    except RecursionError:  # not expected below MAX_DEPTH; never let it be a surprise
        raise JsonTooDeep() from None
