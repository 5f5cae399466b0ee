"""The message shapes the conventions share, reduced to the three texts a call keeps.

OTel v1.37+ messages (`{role, parts[]}`) and OpenAI-format messages (`{role, content}`, as on
v1.26 span events, OpenLLMetry and raw request JSON), given as lists or as JSON strings of
them, become one `Texts`: the system prompt (system instructions plus system and developer
messages), the prompt (the last user message) and the completion (choice 0). Each convention's
reader (`collectors.conventions`) turns its own shapes into these messages first. Only text
parts count, and markers of hidden content ("__REDACTED__", "FILTERED", "") count as not
captured. Every function takes whatever an attribute holds and never raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

# Values instrumentations put where content was hidden or filtered: not captured.
NOT_CAPTURED = frozenset({"", "__REDACTED__", "FILTERED"})
# Markers are short: longer texts skip the set lookup, which would hash the whole text.
_MARKER_CHARS = max(map(len, NOT_CAPTURED))

_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_SYSTEM_ROLES = frozenset({"system", "developer"})
_USER_ROLES = frozenset({"user", "human"})


class Texts(NamedTuple):
    """What one source says about a call's texts; None where it says nothing.

    A NamedTuple rather than a frozen dataclass: one is built per source per span, and
    tuple construction is several times cheaper.
    """

    system_prompt: str | None = None
    prompt: str | None = None
    completion: str | None = None
    finish_reasons: tuple[str, ...] = ()

    @property
    def captured(self) -> bool:
        return not (self.system_prompt is None and self.prompt is None and self.completion is None)

    def fill(self, other: Texts) -> Texts:
        """These texts, with the gaps taken from a lower-priority source."""
        return Texts(
            self.system_prompt if self.system_prompt is not None else other.system_prompt,
            self.prompt if self.prompt is not None else other.prompt,
            self.completion if self.completion is not None else other.completion,
            self.finish_reasons or other.finish_reasons,
        )


# A decoder holds only its configuration; calling raw_decode directly skips the two
# Python-level wrappers (and their whitespace regexes) of json.loads.
_decode_json = json.JSONDecoder().raw_decode


def parse_json(value: Any) -> Any:
    """A JSON string's value; anything else, or JSON cut short, comes back unchanged."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)  # the common case, in a third of the stdlib's time
        except orjson.JSONDecodeError:
            pass  # the stdlib's reading decides: NaN, huge integers, lone surrogates, ...
        try:
            parsed, end = _decode_json(value)
        except (ValueError, RecursionError):
            return value
        if end != len(value) and not value[end:].isspace():
            return value
        return _valid_unicode(parsed)
    return value


def _valid_unicode(value: Any) -> Any:
    """The parsed JSON with each lone surrogate (a legal JSON escape, "\\ud800", that no
    UTF-8 can hold) replaced by U+FFFD, as undecodable bytes are: such a text would fail the
    store's whole group commit. Only the stdlib's reading can yield one (orjson refuses)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    return value


def captured(text: Any) -> str | None:
    """The text itself, or None for a non-string or a not-captured marker."""
    if isinstance(text, str) and (len(text) > _MARKER_CHARS or text not in NOT_CAPTURED):
        return text
    return None


def cut(text: str | None, max_chars: int) -> str | None:
    return text[:max_chars] if text is not None and len(text) > max_chars else text


def message_text(message: Any) -> str | None:
    """The text parts of one message, in OTel (`parts`) or OpenAI (`content`) shape."""
    if not isinstance(message, dict):
        return captured(message)
    content = message.get("parts")
    if content is None:
        content = message.get("content")
    return content_text(content)


def content_text(content: Any) -> str | None:
    """A content string, or the text parts of a part list joined by newlines."""
    if isinstance(content, str):
        return captured(content)
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type", "text")
            if not isinstance(kind, str) or kind not in _TEXT_PARTS:
                continue  # tool calls, media, reasoning and unknown part types
            text = part.get("content")
            if text is None:
                text = part.get("text")
        else:
            text = part
        if isinstance(text, str) and (len(text) > _MARKER_CHARS or text not in NOT_CAPTURED):
            texts.append(text)
    return "\n".join(texts) if texts else None


def from_messages(inputs: Any, outputs: Any = None, instructions: Any = None) -> Texts:
    """Texts of input and output message lists (structured, or JSON strings of them)."""
    systems = [content_text(parse_json(instructions))] if instructions is not None else []
    users = []
    for message in as_list(parse_json(inputs)):
        role = message.get("role") if isinstance(message, dict) else "user"
        if not isinstance(role, str):
            continue
        if role in _SYSTEM_ROLES:
            systems.append(message_text(message))
        elif role in _USER_ROLES:
            users.append(message)
    prompt = None
    for message in reversed(users):  # the last user message that says anything
        prompt = message_text(message)
        if prompt is not None:
            break
    choices = as_list(parse_json(outputs))
    completion = message_text(choices[0]) if choices else None
    return Texts(_join_unique(systems), prompt, completion, _finish_reasons(choices))


def as_list(value: Any) -> list[Any]:
    """A list as it is, None as no items, anything else as the one item."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _join_unique(texts: list[str | None]) -> str | None:
    if len(texts) == 1:
        return texts[0]
    unique = dict.fromkeys(t for t in texts if t is not None)
    return "\n".join(unique) if unique else None


def _finish_reasons(choices: list[Any]) -> tuple[str, ...]:
    reasons = []
    for choice in choices:
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(reason, str):
            reasons.append(reason)
    return tuple(reasons)


def indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened `prefix.N.field` attributes as a list of {field: value}, ordered by N."""
    found: dict[int, dict[str, Any]] = {}
    skip = len(prefix)
    for key, value in attrs.items():
        if key.startswith(prefix):
            index, _, field = key[skip:].partition(".")
            if index.isascii() and index.isdigit():
                found.setdefault(int(index), {})[field] = value
    return [found[i] for i in sorted(found)]
