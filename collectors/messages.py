"""Message shapes of every convention, reduced to the three texts a call keeps.

OTel v1.37+ messages (`{role, parts[]}`), OpenAI-format messages (`{role, content}`, as on
v1.26 span events, OpenLLMetry and raw request JSON), OpenInference and OpenLLMetry flattened
attributes, OpenLIT's "role: content" lines and raw request/response bodies all become one
`Texts`: the system prompt (system instructions plus system and developer messages), the
prompt (the last user message) and the completion (choice 0). Only text parts count, and
markers of hidden content ("__REDACTED__", "FILTERED", "") count as not captured. Every
function takes whatever an attribute holds and never raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from collectors.conventions import NOT_CAPTURED

# Markers are short: longer texts skip the set lookup, which would hash the whole text.
_MARKER_CHARS = max(map(len, NOT_CAPTURED))

_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_SYSTEM_ROLES = frozenset({"system", "developer"})
_USER_ROLES = frozenset({"user", "human"})
_OPENLIT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


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
    for message in _as_list(parse_json(inputs)):
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
    choices = _as_list(parse_json(outputs))
    completion = message_text(choices[0]) if choices else None
    return Texts(_join_unique(systems), prompt, completion, _finish_reasons(choices))


def _as_list(value: Any) -> list[Any]:
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


def from_openinference(attrs: Mapping[str, Any]) -> Texts | None:
    """OpenInference `llm.input_messages.N.message.*`, `llm.prompts`, `llm.choices`."""
    inputs = [_oi_message(m) for m in indexed(attrs, "llm.input_messages.")]
    outputs = [_oi_message(m) for m in indexed(attrs, "llm.output_messages.")]
    prompts = attrs.get("llm.prompts")
    if isinstance(prompts, list):  # before the indexed form, a list of strings
        inputs += [{"role": "user", "content": p} for p in prompts]
    inputs += [{"role": "user", "content": p.get("prompt.text")}
               for p in indexed(attrs, "llm.prompts.")]
    outputs += [{"content": c.get("completion.text")} for c in indexed(attrs, "llm.choices.")]
    if not inputs and not outputs:
        return None
    return from_messages(inputs, outputs)


def _oi_message(fields: dict[str, Any]) -> dict[str, Any]:
    content = fields.get("message.content")
    if content is None:
        content = [
            {"type": p.get("message_content.type", "text"), "text": p.get("message_content.text")}
            for p in indexed(fields, "message.contents.")
        ]
    return {"role": fields.get("message.role"), "content": content}


def from_openllmetry(attrs: Mapping[str, Any]) -> Texts | None:
    """OpenLLMetry before 0.55: `gen_ai.prompt.N.{role,content,user}`, `gen_ai.completion.N.*`."""
    inputs = [_olm_message(m) for m in indexed(attrs, "gen_ai.prompt.")]
    outputs = [_olm_message(m) for m in indexed(attrs, "gen_ai.completion.")]
    if not inputs and not outputs:
        return None
    return from_messages(inputs, outputs)


def _olm_message(fields: dict[str, Any]) -> dict[str, Any]:
    if "user" in fields and "content" not in fields:  # legacy completions API
        return {"role": "user", "content": fields["user"]}
    content = fields.get("content")
    parts = parse_json(content) if isinstance(content, str) and content[:1] == "[" else None
    # Multimodal content arrives as json.dumps of the request's part list.
    if isinstance(parts, list) and all(isinstance(p, dict) and "type" in p for p in parts):
        content = parts
    return {"role": fields.get("role"), "content": content,
            "finish_reason": fields.get("finish_reason")}


def from_openlit(prompt: Any, completion: Any) -> Texts | None:
    """OpenLIT's legacy plain text: the prompt as "role: content" lines, the completion raw."""
    if not isinstance(prompt, str) and not isinstance(completion, str):
        return None
    messages = _openlit_lines(prompt) if isinstance(prompt, str) else []
    return from_messages(messages, [{"content": completion}])


def _openlit_lines(text: str) -> list[dict[str, str]]:
    messages: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        role, sep, rest = line.partition(": ")
        if sep and role.lower() in _OPENLIT_ROLES:
            messages.append((role.lower(), [rest]))
        elif messages:  # a message whose content spans several lines
            messages[-1][1].append(line)
        else:
            messages.append(("user", [line]))
    return [{"role": role, "content": "\n".join(lines)} for role, lines in messages]


def from_raw_io(request: Any, response: Any) -> Texts | None:
    """OpenInference `input.value` / `output.value`: raw request and response bodies."""
    if request is None and response is None:
        return None
    body, reply = parse_json(request), parse_json(response)
    if isinstance(body, dict):
        inputs: Any = _request_messages(body)
        instructions = body.get("instructions", body.get("system"))
    else:
        inputs, instructions = body, None
    return from_messages(inputs, _response_choices(reply), instructions)


def _request_messages(body: Mapping[str, Any]) -> list[Any]:
    for key in ("messages", "input", "prompt"):
        value = body.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
    return []


def _response_choices(reply: Any) -> list[Any]:
    """Choice messages of a chat, completions, Responses or Anthropic response body."""
    if not isinstance(reply, dict):
        return _as_list(reply)
    choices = reply.get("choices")
    if isinstance(choices, list):
        return [_choice_message(c) for c in choices]
    output = reply.get("output")
    if isinstance(output, list):
        messages = [m for m in output if isinstance(m, dict) and m.get("type") == "message"]
        return messages or _as_list(reply.get("output_text"))
    if "content" in reply:
        return [{"content": reply.get("content"), "finish_reason": reply.get("stop_reason")}]
    return []


def _choice_message(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("text")
    return {"content": content, "finish_reason": choice.get("finish_reason")}
