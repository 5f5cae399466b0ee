"""A Node.js app's LLM calls, sent by the stock OpenTelemetry JS http/json exporter.

tests/js/send.mjs uses @opentelemetry/exporter-trace-otlp-http as any Node app does: OTLP/JSON
with hex trace and span ids (not base64 as the protobuf JSON mapping would have them), integer
attributes as JSON numbers, GenAI v1.37 messages as JSON strings. The real daemon must store
every call with the ids the SDK gave it and no export failing or partially rejected.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import REPO, Daemon
from tests.texts import banking_prompts, long_pairs

JS = REPO / "tests" / "js"
SERVICE = "node-support-bot"
MODELS = ("gpt-4o-mini", "gpt-4o")
NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH")


@pytest.fixture(scope="session")
def node() -> str:
    """`node`, with tests/js/node_modules installed from the lock file if it is missing.

    npm writes node_modules/.package-lock.json last, so a missing or older one means no
    install, a broken one or one from before the lock file changed: `npm ci` again.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    installed = JS / "node_modules" / ".package-lock.json"
    if (not installed.is_file()
            or installed.stat().st_mtime < (JS / "package-lock.json").stat().st_mtime):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("tests/js/node_modules is missing and npm is not on PATH")
        result = subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund", "--loglevel=error"],
            capture_output=True, text=True, timeout=300, cwd=REPO)
        if result.returncode != 0:
            message = f"npm ci exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            if NETWORK_ERRORS.search(result.stderr):
                pytest.skip(f"npm registry unreachable; {message}")
            pytest.fail(message)
    return node


def test_stock_js_http_json_exporter_calls_are_stored(
        node: str, daemon: Daemon, tmp_path: Path) -> None:
    completions = [completion for _, completion in long_pairs(20)]
    items = [
        {"prompt": prompt, "completion": completion, "model": MODELS[i % 2],
         "input_tokens": 10 + i, "output_tokens": 200 + i}
        for i, (prompt, completion) in enumerate(zip(banking_prompts(20), completions,
                                                     strict=True))
    ]
    items_path = tmp_path / "items.json"
    items_path.write_text(json.dumps(items, ensure_ascii=False))

    result = subprocess.run(
        [node, str(JS / "send.mjs"), str(items_path), daemon.http + "/v1/traces"],
        capture_output=True, text=True, timeout=120, cwd=JS)

    assert result.returncode == 0, (
        f"send.mjs exited {result.returncode}:\n{result.stderr}\n"
        f"daemon log:\n{daemon.log_path.read_text() if daemon.log_path else ''}")
    sent = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [s["index"] for s in sent] == list(range(len(items)))
    assert len({s["spanId"] for s in sent}) == len(items)
    calls = {c["span_id"]: c for c in daemon.calls()}
    assert sorted(calls) == sorted(s["spanId"] for s in sent)
    for s in sent:
        item, call = items[s["index"]], calls[s["spanId"]]
        assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"])
        assert call["trace_id"] == s["traceId"]
        assert call["parent_span_id"] is None
        assert call["service"] == SERVICE
        assert (call["provider"], call["operation"]) == ("openai", "chat")
        assert call["model"] == call["request_model"] == call["response_model"] == item["model"]
        assert (call["input_tokens"], call["output_tokens"]) == (
            item["input_tokens"], item["output_tokens"])
        assert call["prompt"] == item["prompt"]
        assert call["completion"] == item["completion"]
        assert call["finish_reasons"] == ["stop"]
        assert call["status"] == "ok" and call["error_type"] is None
        assert call["content_captured"] is True
    assert daemon.metric("driftwatch_spans_refused_total") == 0
    assert daemon.metric("driftwatch_spans_accepted_total", transport="http") == len(items)
    assert daemon.metric("driftwatch_receiver_requests_total", transport="http",
                         code="200") >= 1
