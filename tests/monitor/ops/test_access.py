"""The ops API cannot be turned against its own machine by a web page: not by a cross-site
POST from another loopback origin (a real headless Chromium sends it), nor by a page on a
DNS-rebound name reading it under that name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.ops.config import OpsConfig
from tests.harness import Daemon, get, raw_request, wait_for
from tests.monitor.test_daemon import CHAT_NO_CONTENT, post, span_request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
JSON = {"Content-Type": "application/json"}
PIN = json.dumps({"service": "victim", "from": "-2h", "to": "-1h"}).encode()

# What a page on any site can send without a CORS preflight: fetch in no-cors mode with a
# "simple" body, and a form posted as text/plain whose body is still valid JSON.
ATTACK_PAGE = """<!doctype html>
<html><body>
<form id="form" method="POST" enctype="text/plain" target="sink" action="OPS/api/v1/baselines">
  <input type="hidden" name='{"service":"victim","from":"-2h","to":"-1h","model":"' value='"}'>
</form>
<iframe name="sink"></iframe>
<script>
const ops = "OPS";
const pin = JSON.stringify({service: "victim", from: "-2h", to: "-1h"});
async function attack() {
  const results = {};
  const attempts = {
    pin_as_text: [ops + "/api/v1/baselines",
                  {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                   body: pin}],
    run_without_body: [ops + "/api/v1/jobs/retention/run", {method: "POST", mode: "no-cors"}],
    run_as_form: [ops + "/api/v1/jobs/retention/run",
                  {method: "POST", mode: "no-cors", body: new URLSearchParams({job: "now"})}],
  };
  for (const [name, [url, init]] of Object.entries(attempts)) {
    try { results[name] = (await fetch(url, init)).type; }
    catch (error) { results[name] = "failed: " + error; }
  }
  const sink = document.querySelector("iframe");
  const posted = new Promise(resolve => { sink.onload = resolve; });
  document.getElementById("form").submit();
  await posted;
  results.form = "answered";
  await fetch("/done?" + new URLSearchParams(results));
}
attack();
</script>
</body></html>
"""


@contextmanager
def attacker_site(page: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A page served from its own loopback origin; yields its URL and the reports its script
    sends to /done."""
    reports: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/done":
                reports.append(dict(urllib.parse.parse_qsl(url.query)))
            body = page.encode() if url.path == "/" else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", reports
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def chromium(url: str, profile: Path) -> Iterator[None]:
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         "--remote-debugging-port=0", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        browser.kill()
        browser.wait(30)


def stored_old_call(daemon: Daemon) -> None:
    """A call older than the retention: the retention job, if it ran, deletes it."""
    old = span_request(os.urandom(16), os.urandom(8), attributes=CHAT_NO_CONTENT)
    span = old.resource_spans[0].scope_spans[0].spans[0]
    span.start_time_unix_nano -= 8 * 86400 * 10**9  # moved back whole: an 8-day call is
    span.end_time_unix_nano -= 8 * 86400 * 10**9  # out of range, and refused at ingest
    assert post(daemon, "traces", old) == 200


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium: the Debian package "
                    "`chromium` (apt-get install chromium); CI installs it")
def test_a_page_on_another_loopback_origin_cannot_pin_a_baseline_or_run_a_job(
        daemon: Daemon, tmp_path: Path) -> None:
    stored_old_call(daemon)

    with attacker_site(ATTACK_PAGE.replace("OPS", daemon.ops)) as (url, reports), \
            chromium(url, tmp_path / "profile"):
        wait_for(lambda: reports, timeout=60)

    # Every request reached the daemon and was answered (an opaque response, not a network
    # error), so each was refused by the daemon, not by the browser.
    assert reports == [{"pin_as_text": "opaque", "run_without_body": "opaque",
                        "run_as_form": "opaque", "form": "answered"}]
    assert json.loads(get(daemon.ops + "/api/v1/baselines")[1])["baselines"] == []
    assert len(daemon.calls()) == 1  # the retention job did not run
    assert daemon.metric("driftwatch_ops_requests_refused_total", reason="cross_origin") == 4


def test_state_changes_need_json_and_no_other_origin(daemon: Daemon) -> None:
    baselines = daemon.ops + "/api/v1/baselines"
    other = "http://127.0.0.1:1"

    def pin(headers: dict[str, str]) -> tuple[int, str]:
        status, _, body = raw_request("POST", baselines, PIN, headers)
        return status, json.loads(body)["error"] if status >= 400 else ""

    assert pin({"Content-Type": "text/plain"}) == (
        415, "expected Content-Type: application/json, got: 'text/plain'")
    assert pin({**JSON, "Origin": other}) == (
        403, f"a request from origin {other!r} may not change state here")
    assert pin({**JSON, "Origin": "null"})[0] == 403
    assert pin({**JSON, "Sec-Fetch-Site": "same-site"}) == (
        403, "a same-site request may not change state here")
    assert json.loads(get(baselines)[1])["baselines"] == []

    assert pin({**JSON, "Origin": daemon.ops})[0] == 201  # the server's own origin
    assert pin({**JSON, "Sec-Fetch-Site": "same-origin"})[0] == 201
    assert pin(JSON)[0] == 201  # the CLI, curl: no Origin at all


def test_a_request_under_a_foreign_host_name_is_refused(daemon: Daemon) -> None:
    port = daemon.ops.rsplit(":", 1)[1]
    rebound = {"Host": f"rebound.example:{port}"}  # a DNS name an attacker pointed here

    status, body = get(daemon.ops + "/api/v1/calls", rebound)
    assert status == 421
    assert "does not answer to Host 'rebound.example:" in json.loads(body)["error"]
    assert get(daemon.ops + "/metrics", rebound)[0] == 421
    assert get(daemon.ops + "/readyz", rebound)[0] == 200  # probes address pods by IP

    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST:2222", "localhost"):
        assert get(daemon.ops + "/api/v1/calls", {"Host": host})[0] == 200, host
    assert daemon.metric("driftwatch_ops_requests_refused_total", reason="host") == 2


def test_configured_host_names_replace_the_default(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ops={"allowed_hosts": ["driftwatch.internal", "proxy.example:8443"]})
    calls = daemon.ops + "/api/v1/calls"
    assert get(calls, {"Host": "driftwatch.internal:9464"})[0] == 200
    assert get(calls, {"Host": "proxy.example:8443"})[0] == 200
    assert get(calls, {"Host": "proxy.example:8444"})[0] == 421
    assert get(calls, {"Host": "localhost"})[0] == 421


@pytest.mark.parametrize("endpoint, hosts", [
    ("127.0.0.1:9464", ("127.0.0.1", "localhost", "[::1]")),
    ("localhost:9464", ("localhost", "127.0.0.1", "[::1]")),
    ("[::1]:9464", ("[::1]", "localhost", "127.0.0.1")),
    ("10.0.0.5:9464", ("10.0.0.5", "localhost", "127.0.0.1", "[::1]")),
    ("0.0.0.0:9464", ("*",)),  # reached by names it cannot know: a Service, a container
    ("[::]:9464", ("*",)),
])
def test_the_default_host_names_follow_the_endpoint(endpoint: str,
                                                    hosts: tuple[str, ...]) -> None:
    assert OpsConfig(endpoint=endpoint).hosts() == hosts
