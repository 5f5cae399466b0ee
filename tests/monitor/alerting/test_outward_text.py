"""A client names its own service, so a hostile name goes through every notifier to loopback
receivers: Slack gets it escaped in every text field (no live mention, no disguised link),
PagerDuty as one clean bounded line, the webhook and Alertmanager verbatim in well-formed
JSON (the label is the alert's identity; their receivers escape for their own targets)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_config
from tests.monitor.alerting.receivers import Alerting, Receiver, receiving, result

MENTION_AND_LINK = "<!channel> <https://evil.example|Re-authenticate>"
CONTROLS = "chat\n<!here>\x1b[31m\r\nurgent\x00 \u202etxet\u202c\x7f"
OUR_HOSTS = {"driftwatch.test:9464", "grafana.example:3000", "wiki.example"}
CONTROL_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def deliver(tmp_path: Path, service: str) -> dict[str, Any]:
    """Fire a latency alert for `service` through all four notifiers; what each received."""
    rules = {name: False for name in load_config(None, environ={}).alerts.rules}
    with ExitStack() as stack:
        hooks: dict[str, Receiver] = {
            kind: stack.enter_context(receiving())
            for kind in ("alertmanager", "webhook", "slack", "pagerduty")}
        world = Alerting(tmp_path / "d.db", {
            "rules": {**rules, "LLMLatencyRegression": {"for": 1}},
            "grafana_url": "http://grafana.example:3000",
            "runbook_url": "https://wiki.example/runbooks/{alertname}/{service}",
            "notifiers": {
                "alertmanager": [{"url": hooks["alertmanager"].url}],
                "webhook": [{"url": hooks["webhook"].url}],
                "slack": [{"url": hooks["slack"].url}],
                "pagerduty": [{"routing_key": "R" * 32, "url": hooks["pagerduty"].url}],
                "retry": {"attempts": 1}}})
        try:
            world.results = [result(service=service, model="gpt-4o", p95_s=3.0,
                                    p95_ratio=2.0)]
            world.run()
            return {kind: hook.wait(1)[0] for kind, hook in hooks.items()}
        finally:
            world.close()


@pytest.fixture(params=[MENTION_AND_LINK, CONTROLS], ids=["mention-and-link", "controls"])
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_slack_gets_no_live_mention_or_link_in_any_text(tmp_path: Path, service: str) -> None:
    slack = deliver(tmp_path, service)["slack"]
    texts = list(strings(slack))
    assert slack["text"] in texts and len(slack["blocks"]) >= 3
    for text in texts:
        for token in re.findall(r"<([^<>]*)>", text):
            url, _, label = token.partition("|")
            assert label in ("Dashboard", "Runbook", "driftwatch"), token
            parts = urllib.parse.urlsplit(url.replace("&amp;", "&"))
            assert parts.scheme in ("http", "https") and parts.netloc in OUR_HOSTS, token
        assert "<!" not in text and "<@" not in text and "<#" not in text
        assert not CONTROL_CHARS.search(text), repr(text)
        assert len(text) <= 3000
    # shown as written, not dropped: the on-call person sees what the client sent
    escaped = "&lt;!channel&gt; &lt;https://evil.example|Re-authenticate&gt;"
    if service == MENTION_AND_LINK:
        assert escaped in slack["text"] and escaped in slack["blocks"][0]["text"]["text"]
    else:
        assert "chat &lt;!here&gt; [31m urgent txet" in slack["text"]
    assert slack["unfurl_links"] is False and slack["unfurl_media"] is False


def test_the_runbook_link_cannot_be_closed_early_by_the_name(tmp_path: Path) -> None:
    slack = deliver(tmp_path, MENTION_AND_LINK)["slack"]
    [runbook] = [t for t in re.findall(r"<([^<>]*)>", slack["text"]) if t.endswith("|Runbook")]
    url = runbook.removesuffix("|Runbook")
    assert "|" not in url and " " not in url
    assert urllib.parse.unquote(urllib.parse.urlsplit(url).path) == \
        f"/runbooks/LLMLatencyRegression/{MENTION_AND_LINK}"


def test_pagerduty_gets_one_clean_bounded_line(tmp_path: Path, service: str) -> None:
    event = deliver(tmp_path, service)["pagerduty"]
    payload = event["payload"]
    for key in ("summary", "source", "group", "class", "component"):
        assert not CONTROL_CHARS.search(payload[key]) and "\n" not in payload[key], key
    assert len(payload["summary"]) <= 1024 and len(payload["source"]) <= 255
    assert payload["custom_details"]["labels"]["service"] == service, "details keep it exact"
    for link in event["links"]:
        assert not re.search(r"[\s<>|\"]", link["href"]), link
        assert urllib.parse.urlsplit(link["href"]).netloc in OUR_HOSTS


def test_the_webhook_and_alertmanager_get_the_label_verbatim_in_valid_json(
        tmp_path: Path, service: str) -> None:
    received = deliver(tmp_path, service)
    [am] = received["alertmanager"]
    assert am["labels"]["service"] == service
    webhook = received["webhook"]
    assert webhook["groupLabels"]["service"] == service
    assert webhook["alerts"][0]["labels"]["service"] == service
