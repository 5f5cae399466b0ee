"""OTLP/JSON bodies to protobuf messages, with trace and span ids read as hex.

`json_format.Parse` alone reads OTLP/JSON's hex ids as base64 and silently corrupts them
(32 hex chars become a 24-byte trace id), so ids are converted before parsing. Unknown
fields are ignored, as the OTLP spec requires of receivers. Nesting is measured before any
recursive parser sees the body: past MAX_DEPTH it is a 400, where Python's recursion limit
would have made it a 500.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from monitor.core.errors import BadRequest

M = TypeVar("M", bound=Message)

# Arrays and objects inside each other. An OTLP request needs about 12, plus 4 per level of
# nested AnyValue; protobuf's JSON parser stops at 100 message levels anyway. Python's own
# JSON decoder recurses and fails near 1,000 (a RecursionError, not a decode error).
MAX_DEPTH = 256
_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")
_INNERMOST = re.compile(rb"\[\]")

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
# Where ids live, by signal: (resource list, scope list, item list, nested lists with ids)
_PATHS = {
    "resourceSpans": ("scopeSpans", "spans", ("links",)),
    "resourceLogs": ("scopeLogs", "logRecords", ()),
    "resourceMetrics": ("scopeMetrics", "metrics", ()),
}


def parse_json(body: bytes, message: type[M]) -> M:
    """Decode an OTLP/JSON export request.

    :raises BadRequest: not JSON, not an object, an id that is not hex, or a field of the
        wrong type; the message says which.
    """
    return parse_object(read_object(body), message)


def read_object(raw: bytes) -> dict[str, Any]:
    """One JSON object (a request body, a line of a recording).

    :raises BadRequest: not UTF-8 JSON, JSON nested deeper than MAX_DEPTH, or JSON that is
        not an object.
    """
    check_depth(raw)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object, got: {type(data).__name__}")
    return data


def check_depth(raw: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` without recursing into it.

    Strings are cut out (brackets inside them do not nest), the brackets outside are kept, and
    each pass removes the innermost pairs: a body `limit` deep is empty after `limit` passes,
    a typical one after a dozen passes over a string much shorter than the body.

    :raises BadRequest: too deep, unbalanced, or not UTF-8 (OTLP/JSON is UTF-8, and the
        byte-level scan is only sound for it).
    """
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        raise BadRequest("not valid JSON: OTLP/JSON bodies are UTF-8")
    # Escaped backslashes go first, pairwise from the left as a decoder reads them; then
    # escaped quotes; then everything but quotes and brackets. What is left between two
    # quotes was inside a string. Two adjacent quotes enclose nothing and go, which leaves
    # which side of a string every bracket is on unchanged, and most strings hold no
    # brackets. All C-level passes: a 25 MB body takes about half of json.loads's time.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = unescaped.translate(_SAME_BRACKETS, _STRUCTURE).replace(b'""', b"")
    brackets = b"".join(structure.split(b'"')[::2]) if b'"' in structure else structure
    for _ in range(limit):
        if not brackets:
            return
        inner = _INNERMOST.sub(b"", brackets)
        if len(inner) == len(brackets):
            raise BadRequest("not valid JSON: unbalanced brackets")
        brackets = inner
    if brackets:
        raise BadRequest(f"JSON nested deeper than {limit} levels; OTLP needs far fewer")


def parse_object(data: dict[str, Any], message: type[M]) -> M:
    """Decode an OTLP/JSON export request already read into a dict (which this changes:
    hex ids become base64, as protobuf's JSON mapping expects).

    :raises BadRequest: an id that is not hex, or a field of the wrong type.
    """
    _hex_ids_to_base64(data)
    try:
        parsed: M = json_format.ParseDict(data, message(), ignore_unknown_fields=True)
        return parsed
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BadRequest(f"body does not match {message.DESCRIPTOR.name}: {exc}") from None


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    for resource_key, (scope_key, item_key, nested_keys) in _PATHS.items():
        for resource in _either(data, resource_key):
            for scope in _either(resource, scope_key):
                for item in _either(scope, item_key):
                    _convert(item)
                    for nested_key in nested_keys:
                        for nested in _list(item, nested_key):
                            _convert(nested)
                    if resource_key == "resourceMetrics":
                        _convert_exemplars(item)


def _convert_exemplars(metric: dict[str, Any]) -> None:
    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
        body = metric.get(kind)
        if isinstance(body, dict):
            for point in _list(body, "dataPoints"):
                for exemplar in _list(point, "exemplars"):
                    _convert(exemplar)


def _convert(item: Any) -> None:
    if not isinstance(item, dict):
        return
    for key in _ID_FIELDS:
        value = item.get(key)
        if isinstance(value, str):
            item[key] = _hex_to_base64(key, value)


def _hex_to_base64(key: str, value: str) -> str:
    if len(value) % 2:
        raise BadRequest(f"{key}: expected hex of 32 (trace) or 16 (span) chars, got: {value!r}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadRequest(f"{key}: not hex, got: {value[:64]!r}") from None
    return base64.b64encode(raw).decode("ascii")


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _either(obj: Any, key: str) -> list[Any]:
    """The list under the camelCase key, or under its snake_case spelling (both are valid)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
    return _list(obj, key) or _list(obj, snake)
