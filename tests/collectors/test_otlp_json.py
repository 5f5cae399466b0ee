"""How deep an OTLP/JSON body nests is measured without recursing, strings left out."""

from __future__ import annotations

import pytest

from collectors.otlp_json import MAX_DEPTH, check_depth, read_object
from monitor.core.errors import BadRequest


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_limit_passes_and_one_more_level_is_refused() -> None:
    check_depth(arrays(MAX_DEPTH))
    with pytest.raises(BadRequest, match=f"nested deeper than {MAX_DEPTH}"):
        check_depth(arrays(MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_escaped_quotes_or_not() -> None:
    deep_text = b'"' + b"[{" * 1000 + b'"'
    check_depth(b'{"a": ' + deep_text + b"}")
    check_depth(b'{"a": "quote \\" then ' + b"[" * 1000 + b'"}')
    check_depth(b'{"a": "backslash \\\\", "b": "' + b"{" * 1000 + b'"}')


def test_an_escaped_backslash_before_a_quote_ends_the_string() -> None:
    # "\\" is a whole string; the brackets after it are structure.
    with pytest.raises(BadRequest):
        check_depth(b'["\\\\", ' + arrays(MAX_DEPTH) + b"]")


def test_unbalanced_and_non_utf8_bodies_are_bad_requests_not_recursion() -> None:
    for body in (b"[" * 5000, b"]]][[[", '{"a": 1}'.encode("utf-16")):
        with pytest.raises(BadRequest):
            read_object(body)


def test_a_million_levels_are_refused_without_recursing_into_them() -> None:
    with pytest.raises(BadRequest, match="nested deeper"):
        read_object(b'{"x": ' + arrays(1_000_000) + b"}")
