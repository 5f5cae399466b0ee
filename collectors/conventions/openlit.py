"""OpenLIT: OTel GenAI names, plus its own and, before Feb 2026, plain-text prompts.

Its spans say `telemetry.sdk.name` = "openlit" among their attributes. Before its migration
to the v1.37 message attributes (#1018, b0e825dc) it wrote the prompt as "role: content"
lines and the completion as raw text, in the `gen_ai.prompt` / `gen_ai.completion` span
attributes and on the v1.26 span events of the same names: text, never JSON, even when it
looks like JSON. It writes the token metric's name as an attribute holding the total.
"""

from __future__ import annotations

from typing import Any

from collectors.conventions import genai
from collectors.conventions.reader import (
    AGENT,
    EMBEDDINGS,
    LLM,
    OTHER,
    RETRIEVAL,
    Attributes,
    Marks,
    SpanEvents,
    TextSource,
    Vocabulary,
)
from collectors.messages import Texts, from_messages
from monitor.core.records import ContentSource

MARKS = Marks(values=(("telemetry.sdk.name", "openlit"),))
# Its own gen_ai.operation.name values, beside OTel's.
OPERATION_KINDS = {
    "completion": LLM, "embedding": EMBEDDINGS,
    "agent": AGENT, "workflow": AGENT, "framework": AGENT, "execute_task": AGENT,
    "vectordb": RETRIEVAL, "image": OTHER, "audio": OTHER, "fine_tuning": OTHER,
}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    """On its own spans: the span attributes, else the span events, whatever they hold."""
    prompt, completion = attrs.get(genai.PROMPT), attrs.get(genai.COMPLETION)
    return from_text(events.prompt if prompt is None else prompt,
                     events.completion if completion is None else completion)


def _plain_event_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    """On a span without its mark, v1.26 span events of plain text are its lines too."""
    prompt, completion = attrs.get(genai.PROMPT), attrs.get(genai.COMPLETION)
    if prompt is None and genai.json_shaped(events.prompt) is None:
        prompt = events.prompt
    if completion is None and genai.json_shaped(events.completion) is None:
        completion = events.completion
    return from_text(prompt, completion)


def from_text(prompt: Any, completion: Any) -> Texts | None:
    """The prompt as "role: content" lines, the completion raw."""
    if not isinstance(prompt, str) and not isinstance(completion, str):
        return None
    messages = _lines(prompt) if isinstance(prompt, str) else []
    return from_messages(messages, [{"content": completion}])


def _lines(text: str) -> list[dict[str, str]]:
    messages: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        role, sep, rest = line.partition(": ")
        if sep and role.lower() in _ROLES:
            messages.append((role.lower(), [rest]))
        elif messages:  # a message whose content spans several lines
            messages[-1][1].append(line)
        else:
            messages.append(("user", [line]))
    return [{"role": role, "content": "\n".join(lines)} for role, lines in messages]


TEXTS = TextSource(ContentSource.OPENLIT, "openlit", _texts)
PLAIN_EVENTS = TextSource(
    ContentSource.OPENLIT, "openlit", _plain_event_texts, on_events=True)

VOCABULARY = Vocabulary(
    total_tokens=("gen_ai.client.token.usage",),
    streaming=("gen_ai.request.is_stream",),
    # Seconds; the whole duration for a call that did not stream.
    ttft_seconds=("gen_ai.server.time_to_first_token",),
    sources=(TEXTS,),
)
# GenAI's vocabulary as its own spans use it: it reads their v1.26 span events itself, as text.
BASE = genai.VOCABULARY._replace(sources=(genai.MESSAGES,))
# What it adds to the reading of a span it did not mark (collectors.conventions.classifier).
UNMARKED = VOCABULARY._replace(sources=(PLAIN_EVENTS,))
