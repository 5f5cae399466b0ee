"""`driftwatch demo` end to end, as a newcomer runs it: it starts its own daemon, plays the
support bot through the real OpenTelemetry SDK, names the topic that grew, and the report
pages it points to work. Plus the shipped texts and the command's usage errors."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli.demo import DATA, DemoTexts
from tests.harness import REPO, Daemon, cli, get
from tests.monitor.ops.test_reports import report_server

DEMO_TIMEOUT_S = 240  # the demo's budget is 3 minutes on a 2-core machine


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli.demo", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=dict(os.environ))


def test_the_shipped_texts_are_small_attributed_and_split() -> None:
    size = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert size < 400_000
    readme = (DATA / "README.md").read_text()
    for name in ("banking77", "arena_hard", "convabuse", "davidson_hate_offensive"):
        assert (DATA / "LICENSES" / f"{name}.txt").is_file()
        assert name in readme
    assert "CONTENT WARNING" in readme.upper()
    toxic = [json.loads(line) for line in
             (DATA / "toxic_completions.jsonl").read_text().splitlines()]
    assert 200 <= len(toxic) <= 400 and all(row["toxic"] == 1 for row in toxic)
    texts = DemoTexts.load()
    assert not set(texts.baseline_prompts) & set(texts.live_prompts)
    assert not set(texts.new_topic_prompts) & set(texts.baseline_prompts + texts.live_prompts)
    assert min(len(texts.baseline_prompts), len(texts.live_prompts),
               len(texts.new_topic_prompts), len(texts.answers)) >= 200


def test_usage_errors_name_the_problem() -> None:
    half = demo("--ops", "http://127.0.0.1:9")
    assert half.returncode == 2 and "--ops and --endpoint go together" in half.stderr
    down = demo("--ops", "http://127.0.0.1:9", "--endpoint", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach the daemon at http://127.0.0.1:9" in down.stderr
    assert "usage: driftwatch demo" in demo("--help").stdout


@pytest.mark.slow
def test_the_demo_names_the_new_topic_and_its_report_pages_work() -> None:
    process = subprocess.Popen([sys.executable, "-m", "monitor.cli.demo"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    # Threads read both pipes: select() cannot see lines already pulled into a text
    # wrapper's buffer, and an unread stderr pipe would block the demo once it fills.
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []
    readers = [threading.Thread(target=lambda: [lines.put(x) for x in process.stdout or ()]),
               threading.Thread(target=lambda: errors.extend(process.stderr or ()))]
    for reader in readers:
        reader.start()
    began, output = time.monotonic(), ""
    try:
        while "press Ctrl-C" not in output:
            try:
                output += lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None and time.monotonic() - began < DEMO_TIMEOUT_S, (
                    f"the demo stopped or took over {DEMO_TIMEOUT_S}s:\n{output}")
        check_pages(output)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        for reader in readers:
            reader.join(timeout=10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    while not lines.empty():
        output += lines.get()
    stderr = "".join(errors)
    assert process.returncode == 0, f"{output}\n{stderr}"
    assert "expected these to fire" not in stderr

    drift = output.split("PROMPT DRIFT in demo-support-bot (all models)")[1].split("\n\n")[0]
    grew = re.search(r"a topic grew from \d+% to \d+% of prompts: (.+)", drift)
    assert grew and {"atm", "cash", "withdrawal"} & set(grew.group(1).split(", ")), drift
    examples = re.findall(r'e\.g\. "(.+)"', drift)
    new_topic = set(DemoTexts.load().new_topic_prompts)
    assert any(e in new_topic for e in examples), examples
    assert "TOXICITY in demo-support-bot (all models)" in output
    assert "LATENCY" in output and "demo-support-bot/gpt-4o:" in output
    store = Path(re.findall(r"^store: (.+)$", output, re.MULTILINE)[0])
    assert not store.exists(), "Ctrl-C stops the daemon and deletes its temporary store"


def check_pages(output: str) -> None:
    """Every report URL the demo printed answers with its page; before the ops server serves
    /reports (the hookup in monitor/ops/server.py), the same paths are checked on the demo's
    store."""
    urls = sorted(set(re.findall(r"report: (http://\S+)", output)))
    assert any("/reports/drift/" in u for u in urls) and any("/reports/toxicity/" in u
                                                             for u in urls), output
    status, _ = get(urls[0])
    if status == 404 and "<html" not in _:
        store = Path(re.findall(r"^store: (.+)$", output, re.MULTILINE)[0])
        with report_server(store) as base:
            pages = [get(base + "/reports/" + u.split("/reports/", 1)[1]) for u in urls]
    else:
        pages = [get(u) for u in urls]
    for url, (status, page) in zip(urls, pages, strict=True):
        assert status == 200, url
        if "/reports/drift/" in url:
            assert "Clusters whose share moved" in page and "<circle" in page
        elif "/reports/toxicity/" in url:
            assert "Toxic rate over time" in page and "<polyline" in page
        else:  # the latency alert's report_url
            assert "/reports/latency/" in url and "Error-budget burn" in page


# The Quickstart's app snippet (README.md, "## Quickstart"); the test runs the README's own
# copy once it is there, so the README cannot drift from what works.
QUICKSTART_APP = '''
import json

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider()  # the service name comes from OTEL_SERVICE_NAME
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("quickstart")

# What a GenAI instrumentation records around an LLM call (OTel GenAI conventions v1.37)
with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT, attributes={
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 9,
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": "Where is my card?"}]}]),
    "gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "It ships tomorrow."}],
          "finish_reason": "stop"}]),
}):
    pass  # your LLM call goes here

provider.shutdown()  # flush before the script exits
'''


def quickstart_app() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0] if (
        "\n## Quickstart" in readme) else ""
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return blocks[0] if blocks else QUICKSTART_APP


def test_the_quickstart_app_snippet_shows_up_in_driftwatch_calls(
        start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = start_daemon()
    app = tmp_path / "app.py"
    app.write_text(quickstart_app())
    env = {**os.environ, "OTEL_SERVICE_NAME": "support-bot",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{daemon.grpc}"}
    ran = subprocess.run([sys.executable, str(app)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert ran.returncode == 0 and "Failed to export" not in ran.stderr, ran.stderr
    [call] = daemon.calls("--service", "support-bot")
    assert (call["model"], call["prompt"], call["completion"]) == (
        "gpt-4o-mini", "Where is my card?", "It ships tomorrow.")
    table = cli("calls", "--config", str(daemon.config_path), "--since", "1h").stdout
    assert "support-bot" in table and "Where is my card?" in table
