"""What each notifier sends: Alertmanager's webhook JSON (version 4), a Slack message, a
PagerDuty Events v2 event, each built from stored alerts.

Labels come from the wire (a client names its own service), so every text is made safe for
where it lands. Slack reads mrkdwn: in every text field, the top-level `text` as well as the
blocks, `&`, `<` and `>` are escaped, so a service named `<!channel>` is shown, not obeyed,
and links are built only by us, from http(s) URLs percent-encoded so that no `|` or `>` in
them can close the link early and disguise it. Single-line fields (titles, labels, PagerDuty's
summary and source) lose control characters and bidirectional overrides; every field is cut
to what its receiver accepts. JSON itself needs no escaping: the webhook and Alertmanager get
labels verbatim (they are the alert's identity; their own receivers escape for their targets).
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from monitor.core.records import rfc3339
from monitor.store.alert_state import AlertRecord

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert in webhooks
_SLACK_MAX_ALERTS = 10  # alerts listed in one Slack message (its blocks are capped at 50)
_SLACK_TEXT_CHARS = 2900  # Block Kit caps a text object at 3000
_PD_SUMMARY_CHARS = 1024  # PagerDuty Events v2's summary limit
_PD_FIELD_CHARS = 255  # source, group, component, class: names, not prose
# C0 and C1 controls, and the bidirectional overrides that can make text read backwards
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                                   "\u2066-\u2069]")
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # RFC 3986 reserved characters and %: kept as they are


def generator_url(external_url: str, alert: AlertRecord) -> str:
    query = urllib.parse.urlencode({"alertname": alert.alertname})
    return f"{external_url.rstrip('/')}/api/v1/alerts?{query}"


def dedup_key(alert: AlertRecord) -> str:
    return hashlib.sha256(f"driftwatch/{alert.fingerprint}".encode()).hexdigest()


def groups(alerts: Sequence[AlertRecord]) -> list[list[AlertRecord]]:
    """Alerts grouped by alertname and service, as Alertmanager's usual group_by."""
    grouped: dict[tuple[str, str], list[AlertRecord]] = {}
    for alert in alerts:
        grouped.setdefault((alert.alertname, alert.labels.get("service", "")), []).append(alert)
    return list(grouped.values())


def _group_labels(alert: AlertRecord) -> dict[str, str]:
    return {k: alert.labels[k] for k in ("alertname", "service") if k in alert.labels}


def _common(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


# -- texts -------------------------------------------------------------------------------------


def plain(text: str) -> str:
    """One line: control characters and bidi overrides become spaces, runs of spaces one."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def _prose(text: str) -> str:
    """Lines kept, every other control character dropped."""
    return "\n".join(" ".join(line.split())
                     for line in _CONTROLS_BUT_NEWLINE.sub(" ", text).split("\n"))


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, never ending inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    amp = cut.rfind("&", len(cut) - 5)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, as its docs ask of any text we did not
    write: `<!channel>` and `<https://x|y>` are then shown, never obeyed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, text: str) -> str:
    """`<url|text>` for an http(s) URL, its unsafe characters (space, `|`, `<`, `>`, quotes,
    controls) percent-encoded; only the escaped text for anything else."""
    label = mrkdwn(plain(text))
    if not _http(url):
        return label
    return f"<{mrkdwn(urllib.parse.quote(url, safe=_URL_SAFE))}|{label}>"


def _links(alert: AlertRecord) -> list[tuple[str, str]]:
    names = (("dashboard_url", "Dashboard"), ("runbook_url", "Runbook"))
    return [(alert.annotations[key], text) for key, text in names if alert.annotations.get(key)]


def _http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# -- the messages ------------------------------------------------------------------------------


def webhook_message(alerts: Sequence[AlertRecord], external_url: str, *,
                    max_alerts: int = 0, receiver: str = "driftwatch") -> dict[str, Any]:
    """One group of alerts in Alertmanager's webhook format, version 4."""
    group_labels = _group_labels(alerts[0])
    shown = alerts[:max_alerts] if max_alerts else alerts
    firing = any(a.state == "firing" for a in alerts)
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": [{
            "status": a.state,
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": rfc3339(a.fired_ns or a.active_ns),
            "endsAt": rfc3339(a.resolved_ns) if a.resolved_ns else ZERO_TIME,
            "generatorURL": generator_url(external_url, a),
            "fingerprint": a.fingerprint,
        } for a in shown],
        "groupLabels": group_labels,
        "commonLabels": _common([dict(a.labels) for a in alerts]),
        "commonAnnotations": _common([dict(a.annotations) for a in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": "{}:{" + pairs + "}",
        "truncatedAlerts": len(alerts) - len(shown),
    }


def _title(alerts: Sequence[AlertRecord]) -> str:
    firing = [a for a in alerts if a.state == "firing"]
    status = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    service = alerts[0].labels.get("service")
    return plain(f"[{status}] {alerts[0].alertname}" + (f" {service}" if service else ""))


def slack_message(alerts: Sequence[AlertRecord], external_url: str) -> dict[str, Any]:
    """Text (what a notification shows) plus blocks, every text in them escaped."""
    title = mrkdwn(_title(alerts))
    first = alerts[0]
    summary = mrkdwn(plain(first.annotations.get("summary", "")))
    links = " ".join(slack_link(url, text) for url, text in _links(first))
    text = _clip(f"{title} – {summary}", _SLACK_TEXT_CHARS) + (f" {links}" if links else "")
    blocks: list[dict[str, Any]] = [_section(f"*{_clip(title, _SLACK_TEXT_CHARS - 2)}*")]
    for alert in alerts[:_SLACK_MAX_ALERTS]:
        blocks.append(_section(_clip(_alert_lines(alert), _SLACK_TEXT_CHARS)))
        context = [slack_link(url, text) for url, text in _links(alert)]
        context.append(slack_link(generator_url(external_url, alert), "driftwatch"))
        blocks.append(_context(" · ".join(context)))
    if len(alerts) > _SLACK_MAX_ALERTS:
        blocks.append(_context(f"and {len(alerts) - _SLACK_MAX_ALERTS} more "
                               "(`driftwatch alerts`)"))
    # No previews: a hostile URL in a label should not be fetched and shown by Slack.
    return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _alert_lines(alert: AlertRecord) -> str:
    lines = [f"*{mrkdwn(plain(alert.annotations.get('summary', alert.alertname)))}*"
             + ("" if alert.state == "firing" else " (resolved)")]
    for key in ("description", "explanation", "examples"):
        if alert.annotations.get(key):
            lines.append(mrkdwn(_prose(alert.annotations[key])))
    labels = ", ".join(f"{k}={plain(v)}" for k, v in sorted(alert.labels.items())
                       if k != "alertname")
    lines.append(f"_{mrkdwn(labels)}_")
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": _clip(text, _SLACK_TEXT_CHARS)}]}


def pagerduty_event(alert: AlertRecord, routing_key: str, external_url: str) -> dict[str, Any]:
    """A trigger for a firing alert, else a resolve; PagerDuty shows the summary, source
    and class as plain text (in SMS and phone calls too), so they are one clean line."""
    key = dedup_key(alert)
    if alert.state != "firing":
        return {"routing_key": routing_key, "dedup_key": key, "event_action": "resolve"}
    labels = alert.labels
    service = plain(labels.get("service", ""))
    summary = plain(alert.annotations.get("summary") or alert.alertname)
    payload: dict[str, Any] = {
        "summary": _clip(f"[{labels.get('severity', '')}] {summary}", _PD_SUMMARY_CHARS),
        "source": _clip(f"driftwatch/{service}" if service else "driftwatch", _PD_FIELD_CHARS),
        "severity": "critical" if labels.get("severity") == "page" else "warning",
        "timestamp": rfc3339(alert.fired_ns or alert.active_ns),
        "class": _clip(plain(alert.alertname), _PD_FIELD_CHARS),
        "custom_details": {**alert.annotations, "labels": dict(labels),
                           "value": alert.value},
    }
    if service:
        payload["group"] = _clip(service, _PD_FIELD_CHARS)
    if plain(labels.get("model", "")):
        payload["component"] = _clip(plain(labels["model"]), _PD_FIELD_CHARS)
    event: dict[str, Any] = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
        "payload": payload, "client": "driftwatch",
        "client_url": generator_url(external_url, alert)}
    links = [{"href": urllib.parse.quote(url, safe=_URL_SAFE), "text": text}
             for url, text in _links(alert) if _http(url)]
    if links:
        event["links"] = links
    return event
