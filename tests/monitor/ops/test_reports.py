"""The report pages: drift, toxicity and latency results rendered from a real history,
served by aiohttp on loopback, and loaded in a real headless Chromium (DevTools protocol)
that must see no console error, a drawn plot and the cluster table, and saves a screenshot."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.core.records import DetectorResult, Direction
from monitor.daemon import DETECTORS
from monitor.jobs.plugin import details_readers
from monitor.ops.reports import report_path, routes
from monitor.store.history import SqliteHistory
from monitor.store.sqlite import SqliteStore
from tests.harness import get, raw_request

MINUTE_NS = 60 * 10**9
NOW_NS = 1_790_000_000 * 10**9
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The env notes' flags: no sandbox as root, and no background traffic on a closed network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")
HOSTILE = "<script>alert('x')</script> & my card is [CARD]"


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve an aiohttp app on a free loopback port in a thread; yield its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()
    base: list[str] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        base.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "report server did not start"
    try:
        yield base[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def report_server(store_path: Path) -> Iterator[str]:
    """The report routes over the history in a store, as the ops server adds them."""
    history = SqliteHistory(store_path, details=details_readers(DETECTORS))
    app = web.Application()
    app.add_routes(routes(history, DETECTORS))
    try:
        with serve(app) as url:
            yield url
    finally:
        history.close()


def drift_result(**overrides: Any) -> DetectorResult:
    rng = random.Random(3)
    reference = [[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(150)]
    current = ([[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(100)]
               + [[rng.gauss(4, 0.5), rng.gauss(2, 0.5)] for _ in range(50)])
    details: dict[str, Any] = {
        "decision": True, "reference": "baseline pinned 2026-09-22 10:00 to 11:00",
        "reference_mode": "baseline", "alpha": 0.01,
        "hysteresis": {"k": 2, "m": 3, "drift_in_window": 2},
        "tests": {"mmd": {"statistic": 0.0123, "p_value": 0.000999, "effect": 0.71},
                  "novelty": {"statistic": 0.27, "p_value": 1.2e-9, "effect": 0.22}},
        "classifier_auc": 0.71, "centroid_distance": 0.18,
        "clusters": [
            {"cluster": 3, "size": 61, "share_reference": 0.0, "share_current": 0.33,
             "p_value": 1e-12, "q_value": 4e-12, "keywords": ["atm", "cash", "withdrawal"],
             "examples": ["The ATM ate my card", HOSTILE, "Why was I charged for cash?"],
             "example_rows": [1, 2, 3], "example_window": "current"},
            {"cluster": 1, "size": 80, "share_reference": 0.4, "share_current": 0.25,
             "p_value": 0.001, "q_value": 0.002, "keywords": ["transfer", "pending"],
             "examples": ["Is my transfer still pending?"], "example_rows": [4],
             "example_window": "reference"},
        ],
        "projection": {"reference": reference, "current": current},
        "self_check": {"false_alarm_rate": 0.05, "splits": 20, "computed_ns": NOW_NS},
    }
    fields: dict[str, Any] = dict(
        detector="drift", service="support-bot", model=None, direction=Direction.PROMPT,
        window_start_ns=NOW_NS - 60 * MINUTE_NS, window_end_ns=NOW_NS, n_reference=300,
        n_current=300, statistic=0.0123, p_value=1.2e-9, anomalous=True,
        summary="drift in prompts of support-bot: classifier AUC 0.71; a cluster (atm, cash, "
        "withdrawal) went from 0% to 33%", details=details, computed_ns=NOW_NS)
    fields = {**fields, **overrides}
    fields["details"] = DETECTORS["drift"].details_from_json(fields["details"])
    return DetectorResult(**fields)


def toxicity_result(i: int, rate: float) -> DetectorResult:
    return DetectorResult(
        detector="toxicity", service="support-bot", model="gpt-4o",
        direction=Direction.COMPLETION, window_start_ns=NOW_NS - (6 - i) * 15 * MINUTE_NS,
        window_end_ns=NOW_NS - (5 - i) * 15 * MINUTE_NS, n_reference=400, n_current=150,
        statistic=rate, p_value=0.2 if rate < 0.05 else 1e-6, anomalous=rate > 0.05,
        summary=f"{rate:.1%} toxic", computed_ns=NOW_NS - (5 - i) * 15 * MINUTE_NS,
        details=DETECTORS["toxicity"].details_from_json({
            "scorer": "minilm-logistic", "threshold": 0.77, "mean_score": 0.1,
            "toxic_rate": rate, "toxic_count": int(rate * 150), "ci_low": rate * 0.7,
            "ci_high": rate * 1.3 + 0.01, "reference_rate": 0.01,
            "reference_mean_score": 0.05, "increase": rate - 0.01,
            "reference": "baseline pinned", "top_examples": [
                {"score": 0.97, "text": HOSTILE}, {"score": 0.91, "text": "you are useless"}]}))


def latency_result() -> DetectorResult:
    return DetectorResult(
        detector="latency", service="support-bot", model="gpt-4o", direction=None,
        window_start_ns=NOW_NS - 15 * MINUTE_NS, window_end_ns=NOW_NS, n_reference=400,
        n_current=120, statistic=2.1, p_value=1e-5, anomalous=True,
        summary="latency regressed on support-bot/gpt-4o", computed_ns=NOW_NS,
        details=DETECTORS["latency"].details_from_json({
            "count": 120, "rate_per_s": 0.133, "errors": 3, "error_rate": 0.025,
            "errors_by_type": {"timeout": 2, HOSTILE: 1}, "p50_s": 0.8, "p90_s": 1.5,
            "p95_s": 2.1, "p99_s": 4.0, "ttft_p50_s": 0.2, "ttft_p95_s": None,
            "output_tokens_per_s": 41.5, "tokens_per_call": 310.0,
            "reference": "pinned baseline", "reference_p95_s": 1.0, "p95_ratio": 2.1,
            "p95_ratio_ci": [1.7, 2.6], "burn_rates": {
                "availability": {"5m": 2.5, "1h": 0.5, "3d": None},
                "latency": {"5m": 0.0, "1h": 0.0, "3d": None}}}))


@dataclass
class Stored:
    path: Path
    drift: int
    insufficient: int
    toxicity: list[int] = field(default_factory=list)
    latency: int = 0


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()  # creates and migrates the file
    history = SqliteHistory(path)
    try:
        drift, insufficient = history.record([drift_result(), drift_result(
            anomalous=None, details={"decision": None, "tests": {}, "clusters": []},
            summary="insufficient data for prompts of support-bot", n_current=3)])
        toxic = history.record([toxicity_result(i, r)
                                for i, r in enumerate([0.01, 0.02, 0.01, 0.09, 0.14])])
        [latency] = history.record([latency_result()])
    finally:
        history.close()
    assert drift.id and insufficient.id and latency.id
    return Stored(path=path, drift=drift.id, insufficient=insufficient.id,
                  toxicity=[t.id or 0 for t in toxic], latency=latency.id)


def test_the_drift_page_shows_windows_tests_projection_and_clusters(stored: Stored) -> None:
    with report_server(stored.path) as url:
        status, headers, body = raw_request("GET", f"{url}/reports/drift/{stored.drift}")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<script" not in page.replace("&lt;script", ""), "no script, and texts escaped"
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; my card is [CARD]" in page
    assert "Drift in prompts of support-bot (all models)" in page and "ANOMALOUS" in page
    for fact in ("baseline pinned 2026-09-22 10:00 to 11:00", "300 / 300", "mmd", "novelty",
                 "1.2e-09", "0.000999", "0.71", "5.0% of 20 splits"):
        assert fact in page, fact
    projection = page.split('id="projection"')[1].split("</section>")[0]
    assert projection.count("<circle") == 300
    clusters = page.split('id="clusters"')[1].split("</section>")[0]
    assert clusters.count("<tr>") == 3  # the header and two clusters
    assert "0% " in clusters and "33% " in clusters and "+33%" in clusters
    assert "atm, cash, withdrawal" in clusters and "The ATM ate my card" in clusters


def test_a_drift_result_without_data_still_renders(stored: Stored) -> None:
    with report_server(stored.path) as url:
        status, page = get(f"{url}/reports/drift/{stored.insufficient}")
    assert status == 200
    assert "insufficient data" in page and "No projection" in page
    assert "No test ran" in page and "No cluster moved" in page


def test_the_toxicity_page_shows_the_rate_over_time_and_the_examples(stored: Stored) -> None:
    with report_server(stored.path) as url:
        status, page = get(f"{url}/reports/toxicity/{stored.toxicity[3]}")
    assert status == 200
    assert "Toxicity of completions of support-bot/gpt-4o" in page
    assert "9.0% (95% CI 6.3% to 12.7%)" in page
    chart = page.split('id="rate"')[1].split("</section>")[0]
    points = re.search(r'<polyline points="([^"]+)"', chart)
    assert points and len(points.group(1).split()) == 4, "the series up to this result"
    examples = page.split('id="examples"')[1]
    assert "&lt;script&gt;" in examples and "you are useless" in examples
    assert "may be offensive" in examples


@pytest.mark.parametrize("path, status, message", [
    ("/reports/drift/999999", 404, "There is no result 999999"),
    ("/reports/toxicity/12abc", 400, "Expected a result number, got: &#x27;12abc&#x27;"),
])
def test_unknown_and_malformed_ids_get_an_html_error(
        stored: Stored, path: str, status: int, message: str) -> None:
    with report_server(stored.path) as url:
        code, headers, body = raw_request("GET", url + path)
    assert code == status and headers["Content-Type"].startswith("text/html")
    assert message in body.decode()


def test_a_result_of_another_detector_points_to_its_page(stored: Stored) -> None:
    with report_server(stored.path) as url:
        status, page = get(f"{url}/reports/toxicity/{stored.drift}")
        latency_status, latency_page = get(f"{url}/reports/drift/{stored.latency}")
    assert status == 404
    assert f'<a href="/reports/drift/{stored.drift}">' in page
    assert latency_status == 404 and "is a latency result" in latency_page


def test_the_latency_page_shows_quantiles_burn_rates_and_errors(stored: Stored) -> None:
    with report_server(stored.path) as url:
        status, page = get(f"{url}/reports/latency/{stored.latency}")
    assert status == 200
    assert "Latency of support-bot/gpt-4o" in page and "ANOMALOUS" in page
    for fact in ("120 (0.133 per second)", "3 (2.5%)", "2.1s, reference 1s",
                 "x2.10 (95% CI x1.7 to x2.6)", "pinned baseline"):
        assert fact in page, fact
    burn = page.split('id="burn"')[1].split("</section>")[0]
    assert "<th class=num>5m</th>" in burn and "2.50x" in burn and "<td class=num>-</td>" in burn
    errors = page.split('id="errors"')[1].split("</section>")[0]
    assert "timeout" in errors and "&lt;script&gt;" in errors and "<script" not in errors


def test_every_detector_has_a_report_page_and_an_unknown_one_none(stored: Stored) -> None:
    with report_server(stored.path) as url:
        for detector, result_id in (("drift", stored.drift), ("toxicity", stored.toxicity[0]),
                                    ("latency", stored.latency)):
            assert get(f"{url}/reports/{detector}/{result_id}")[0] == 200, detector
        status, page = get(f"{url}/reports/sentiment/{stored.drift}")
    assert set(DETECTORS) == {"drift", "toxicity", "latency", "cost", "evaluation", "canary"}
    assert status == 404 and ("detectors are: canary, cost, drift, evaluation, latency, "
                              "toxicity") in page


def test_report_path_names_the_page_of_a_result() -> None:
    assert report_path({"detector": "drift", "id": 7}) == "/reports/drift/7"
    assert report_path(drift_result(id=8)) == "/reports/drift/8"
    assert report_path({"detector": "latency", "id": 7}) == "/reports/latency/7"
    assert report_path({"detector": "toxicity", "id": None}) is None


# -- in a real browser ------------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client over aiohttp's websocket client."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)
                self._arrived.set()

    async def call(self, method: str, session: str | None = None,
                   **params: Any) -> dict[str, Any]:
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self._ws.send_json(message)
        answer = await asyncio.wait_for(future, 30)
        assert "error" not in answer, f"{method}: {answer['error']}"
        result: dict[str, Any] = answer["result"]
        return result

    async def wait_for(self, method: str, timeout: float = 30) -> None:
        async def seen() -> None:
            while not any(e.get("method") == method for e in self.events):
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(seen(), timeout)

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, failed loads and 4xx/5xx subresources."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                 "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.loadingFailed":
                found.append(f"failed load: {params.get('errorText')}")
            elif (method == "Network.responseReceived"
                  and params["response"]["status"] >= 400):
                found.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
        return found


async def open_in_chromium(url: str, screenshot: Path, profile: Path,
                           checks: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Load `url` in headless Chromium; evaluate `checks` (name -> JS expression), save a
    full-page screenshot, and return the checks' values and every problem the page had."""
    assert CHROMIUM is not None
    browser = await asyncio.create_subprocess_exec(
        CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--window-size=1280,900", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        assert browser.stderr is not None
        ws_url = ""
        while not ws_url:
            line = (await asyncio.wait_for(browser.stderr.readline(), 60)).decode()
            assert line, "chromium exited before it listened"
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            ws_url = match.group(1) if match else ""
        async with aiohttp.ClientSession() as http, http.ws_connect(
                ws_url, max_msg_size=0) as ws:
            tools = DevTools(ws)
            target = await tools.call("Target.createTarget", url="about:blank")
            session = (await tools.call("Target.attachToTarget", targetId=target["targetId"],
                                        flatten=True))["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await tools.call(f"{domain}.enable", session)
            await tools.call("Emulation.setDeviceMetricsOverride", session, width=1280,
                             height=900, deviceScaleFactor=1, mobile=False)
            await tools.call("Page.navigate", session, url=url)
            await tools.wait_for("Page.loadEventFired")
            values = {}
            for name, expression in checks.items():
                answer = await tools.call("Runtime.evaluate", session, expression=expression,
                                          returnByValue=True)
                values[name] = answer["result"].get("value")
            shot = await tools.call("Page.captureScreenshot", session, format="png",
                                    captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            await tools.call("Browser.close")
            return values, tools.problems()
    finally:
        if browser.returncode is None:
            browser.kill()
        await browser.wait()


DRIFT_CHECKS = {
    "points": "document.querySelectorAll('#projection svg circle').length",
    "plot_width": "document.querySelector('#projection svg').getBoundingClientRect().width",
    "plot_height": "document.querySelector('#projection svg').getBoundingClientRect().height",
    "cluster_rows": "document.querySelectorAll('#clusters tbody tr').length",
    "table_visible": "document.querySelector('#clusters table').getBoundingClientRect().height",
    "scripts": "document.scripts.length",
    "hostile_text": "document.querySelector('#clusters').innerText.includes(\"<script>\")",
}
TOXICITY_CHECKS = {
    "line": "document.querySelectorAll('#rate svg polyline').length",
    "plot_width": "document.querySelector('#rate svg').getBoundingClientRect().width",
    "examples": "document.querySelectorAll('#examples tbody tr').length",
}


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium: the Debian package "
                    "`chromium` (apt-get install chromium); CI installs it")
def test_the_pages_load_cleanly_in_headless_chromium(stored: Stored, tmp_path: Path) -> None:
    screenshots = {"drift": tmp_path / "drift-report.png",
                   "toxicity": tmp_path / "toxicity-report.png"}
    with report_server(stored.path) as url:
        drift, drift_problems = asyncio.run(open_in_chromium(
            f"{url}/reports/drift/{stored.drift}", screenshots["drift"],
            tmp_path / "profile-drift", DRIFT_CHECKS))
        toxicity, toxicity_problems = asyncio.run(open_in_chromium(
            f"{url}/reports/toxicity/{stored.toxicity[-1]}", screenshots["toxicity"],
            tmp_path / "profile-toxicity", TOXICITY_CHECKS))
    assert drift_problems == [] and toxicity_problems == []
    assert drift["points"] == 300 and drift["plot_width"] > 600 and drift["plot_height"] > 300
    assert drift["cluster_rows"] == 2 and drift["table_visible"] > 50
    assert drift["scripts"] == 0 and drift["hostile_text"] is True  # shown as text
    assert toxicity == {"line": 1, "plot_width": toxicity["plot_width"], "examples": 2}
    assert toxicity["plot_width"] > 600
    for path in screenshots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    print(f"screenshots: {', '.join(map(str, screenshots.values()))}")
    keep = os.environ.get("DRIFTWATCH_KEEP_SCREENSHOTS")  # a folder, for a human to look
    if keep:
        for path in screenshots.values():
            shutil.copy(path, Path(keep) / path.name)


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium: the Debian package "
                    "`chromium` (apt-get install chromium); CI installs it")
def test_the_browser_check_sees_console_errors_and_missing_resources(tmp_path: Path) -> None:
    """The check above would fail on a broken page: this one logs an error and loads a
    missing image."""
    async def broken(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            "<!doctype html><title>broken</title><link rel=icon href='data:,'>"
            "<img src='/missing.png'><script>console.error('boom')</script>"))

    app = web.Application()
    app.router.add_get("/broken", broken)
    with serve(app) as url:
        _, problems = asyncio.run(open_in_chromium(
            f"{url}/broken", tmp_path / "broken.png", tmp_path / "profile", {}))
    assert any("boom" in p for p in problems), problems
    assert any("404" in p and "missing.png" in p for p in problems), problems
