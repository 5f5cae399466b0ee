"""OTLP attribute values as plain Python, and tolerant typed reads of them.

An `AnyValue` becomes a str, bool, int, float or bytes, a list for `array_value`, a dict for
`kvlist_value`, and None when unset. `KeyValue` lists become dicts (the last duplicate key
wins, as in the SDKs). This runs for every attribute of every span, so it reads strings
directly and asks `WhichOneof` only about the rest. The `as_*` readers then take a value as
a count, duration, flag or label, giving None rather than raising for any other type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_T = TypeVar("_T")

_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})


def any_value(value: AnyValue) -> Any:
    """The plain-Python form of one AnyValue (None when no variant is set)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "array_value":  # most often of strings: read as attributes_dict does
        return [v.string_value or any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return None


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """A KeyValue list (span, resource, event or log attributes) as a dict."""
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        # Most attributes are strings, and a non-empty string_value can only mean one: read
        # it first and ask WhichOneof only about the rest.
        text = value.string_value
        out[kv.key] = text if text else any_value(value)
    return out


# Typed reads of converted values. Attributes hold whatever the instrumentation put there,
# so each returns None for a value of the wrong type instead of raising.

MAX_INT64 = 2**63 - 1  # SQLite's INTEGER; larger counts are garbage, not usage


def first(
    attrs: Mapping[str, Any], keys: Iterable[str], read: Callable[[Any], _T | None]
) -> _T | None:
    """The first of `keys` whose value `read` accepts."""
    for key in keys:
        if key in attrs:
            value = read(attrs[key])
            if value is not None:
                return value
    return None


def as_label(value: Any, max_chars: int = 256) -> str | None:
    """A non-blank string, cut to `max_chars` (names and types, never free text)."""
    if isinstance(value, str) and value and not value.isspace():
        return value[:max_chars]
    return None


VERSION_CHARS = 128


def version_label(value: Any) -> str | None:
    """A version or variant name: a non-blank string cut to 128 characters, or an integer
    (a prompt template's version number) written out; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)[:VERSION_CHARS]
    return as_label(value, VERSION_CHARS)


def as_count(value: Any) -> int | None:
    """A non-negative integer count, also from an integral float or a decimal string."""
    if isinstance(value, str) and 0 < len(value) <= 18 and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT64:
        return value
    return None


def as_seconds(value: Any) -> float | None:
    """A finite, non-negative duration."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def as_flag(value: Any) -> bool | None:
    """A bool, also from "true"/"false" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
