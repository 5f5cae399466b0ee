"""CORS on the OTLP/HTTP receiver, as the Collector serves it: a browser page on another origin
exports OTLP/JSON with fetch() when its origin is allowed, and is blocked when it is not.

The browser test runs Debian's chromium headless against the real daemon; the preflight tests
send the requests a browser sends, and read the headers it would act on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydantic
import pytest

from collectors.config import HttpReceiverConfig
from tests.collectors.test_otlp_receivers import chat_span, json_traces
from tests.harness import Daemon, raw_request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "s3cret-token-for-tests-0123456789"

PAGE = """<!doctype html><script>
const report = (outcome) => fetch("/result", {method: "POST", body: outcome});
fetch(%(url)s, {method: "POST", body: %(body)s, headers: {
    "Content-Type": "application/json", "Authorization": "Bearer %(token)s"}})
  .then((r) => report(String(r.status)), (e) => report("blocked: " + e));
</script>"""


class PageServer:
    """A loopback origin that serves one page and records what the page reports back."""

    def __init__(self) -> None:
        self.page = ""
        self.outcome: str | None = None
        self.reported = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.outcome = self.rfile.read(length).decode()
                server.reported.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


def export_from_browser(page: PageServer, receiver: str, tmp_path: Path) -> str:
    """Open the page in headless chromium; what its fetch() to the receiver came to."""
    body = json_traces([chat_span("eee19b7ec3c1b174", "sent by a browser")]).decode()
    page.page = PAGE % {"url": json.dumps(receiver + "/v1/traces"), "body": json.dumps(body),
                        "token": TOKEN}
    page.reported.clear()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", page.origin + "/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert page.reported.wait(120), "the page never reported"
    finally:
        browser.terminate()
        browser.wait(30)
    assert page.outcome is not None
    return page.outcome


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium (apt install chromium)")
def test_a_browser_on_an_allowed_origin_exports_and_one_on_another_is_blocked(
        start_daemon: Callable[..., Daemon], page_server: PageServer, tmp_path: Path) -> None:
    allowing = start_daemon(home="allowing", receivers={"otlp_http": {
        "cors_allowed_origins": [page_server.origin], "cors_allowed_headers": ["Authorization"],
        "auth": {"bearer_token": TOKEN}}})
    refusing = start_daemon(home="refusing", receivers={"otlp_http": {
        "cors_allowed_origins": ["https://*.example.com"]}})

    assert export_from_browser(page_server, allowing.http, tmp_path) == "200"
    assert export_from_browser(page_server, refusing.http, tmp_path).startswith("blocked")

    assert [c["prompt"] for c in allowing.calls()] == ["sent by a browser"]
    assert refusing.calls() == []  # the preflight failed, so the browser never sent it


def preflight(daemon: Daemon, origin: str, headers: str = "content-type"
              ) -> tuple[int, dict[str, str]]:
    status, answer, _ = raw_request("OPTIONS", daemon.http + "/v1/traces", None, {
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers})
    return status, answer


def test_preflights_are_answered_for_exact_wildcard_and_any_origins(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(receivers={"otlp_http": {"cors_allowed_origins": [
        "https://app.example.org", "https://*.example.com"], "cors_max_age": 600}})

    for origin in ("https://app.example.org", "https://eu.app.example.com"):
        status, headers = preflight(daemon, origin, "Content-Type, Content-Encoding")
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == origin
        assert headers["Access-Control-Allow-Methods"] == "POST"
        assert headers["Access-Control-Allow-Headers"] == "content-encoding, content-type"
        assert headers["Access-Control-Max-Age"] == "600"
    for origin in ("https://example.com", "https://evil.org", "http://app.example.org"):
        _, headers = preflight(daemon, origin)
        assert "Access-Control-Allow-Origin" not in headers, origin
    _, headers = preflight(daemon, "https://app.example.org", "content-type, x-secret")
    assert "Access-Control-Allow-Origin" not in headers  # a header no config allowed

    anyone = start_daemon(home="anyone", receivers={"otlp_http": {"cors_allowed_origins": ["*"]}})
    status, headers = preflight(anyone, "https://whoever.test")
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://whoever.test"


def test_exports_carry_cors_headers_only_for_allowed_origins(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(receivers={"otlp_http": {"cors_allowed_origins": [
        "https://app.example.org"]}})
    body = json_traces([chat_span("eee19b7ec3c1b174", "from a page")])

    allowed = raw_request("POST", daemon.http + "/v1/traces", body, {
        "Content-Type": "application/json", "Origin": "https://app.example.org"})
    other = raw_request("POST", daemon.http + "/v1/traces", body, {
        "Content-Type": "application/json", "Origin": "https://evil.org"})

    assert allowed[0] == 200 and allowed[1]["Access-Control-Allow-Origin"] == (
        "https://app.example.org")
    assert other[0] == 200 and "Access-Control-Allow-Origin" not in other[1]


def test_without_allowed_origins_there_is_no_cors_at_all(daemon: Daemon) -> None:
    status, headers = preflight(daemon, "https://app.example.org")
    assert status == 405
    assert "Access-Control-Allow-Origin" not in headers


def test_an_origin_that_is_not_one_is_a_config_error_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError,
                       match=r"(?s)cors_allowed_origins.*'app\.example\.org'"):
        HttpReceiverConfig(cors_allowed_origins=("app.example.org",))
