"""Where alerts go: Alertmanager, a webhook (Alertmanager's JSON, version 4), Slack and
PagerDuty, and the dispatcher that runs their deliveries off the event loop.

Alertmanager gets what Prometheus sends it: every firing alert with endsAt = now + 4 x
max(source interval, resend_delay), re-sent every resend_delay, and every resolved one with
endsAt = its resolve time, re-sent for resolved_retention; never a pending one. The others
are told about transitions, as Alertmanager tells its receivers: an alert fired, then again
every repeat_interval while it keeps firing (Alertmanager's repeat_interval; 0 = never), and
an alert resolved (unless send_resolved is off). What each notifier was told, and when, is
stored (`monitor.store.alert_state`), so a restart sends neither twice nor too little, and the
next reminder is due repeat_interval after the last one sent, whenever the daemon started.

A request that fails with 429, 5xx or no answer is retried with exponential backoff,
honouring Retry-After; any other 4xx is final (the alert is marked rejected for that
notifier and not sent again). Each notifier delivers in its own worker thread, so a slow
or failing one holds up neither the others nor detection or ingest.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, ClassVar

from monitor import __version__
from monitor.alerting.config import (
    AlertmanagerTarget,
    AlertsConfig,
    PagerDutyTarget,
    RetryConfig,
    SlackTarget,
    WebhookTarget,
)
from monitor.core.metrics import SelfMetrics
from monitor.core.records import rfc3339
from monitor.store.alert_state import AlertRecord, Delivery, SqliteAlertState

log = logging.getLogger(__name__)

USER_AGENT = f"driftwatch/{__version__}"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert in webhooks
_LATENESS_NS = 1_000_000_000  # evaluations start a little late; don't skip a resend
_SLACK_MAX_ALERTS = 10  # alerts listed in one Slack message (its blocks are capped at 50)


class Outcome(StrEnum):
    SENT = "sent"
    REJECTED = "rejected"  # a 4xx other than 429: retrying cannot help
    FAILED = "failed"  # 429, 5xx or no answer after every attempt: the next round retries


class HttpSender:
    """POSTs JSON with retries; one per notifier, so a Retry-After pauses only that one."""

    def __init__(self, kind: str, retry: RetryConfig, metrics: SelfMetrics,
                 stopping: threading.Event, *, name: str) -> None:
        self.kind = kind
        self.name = name  # for logs: never the whole URL (Slack's carries its secret)
        self._retry = retry
        self._metrics = metrics
        self._stopping = stopping
        self._not_before = 0.0  # monotonic; a Retry-After longer than we wait in a round
        for outcome in ("sent", "failed"):  # exported as 0 from the start, for rate()
            metrics.notifications.labels(kind, outcome)

    def paused(self) -> bool:
        return time.monotonic() < self._not_before

    def post(self, url: str, body: Any) -> Outcome:
        data = json.dumps(body, ensure_ascii=False).encode()
        retry = self._retry
        delay = retry.backoff
        status, detail = 0, ""
        for attempt in range(1, retry.attempts + 1):
            status, detail, retry_after = self._once(url, data)
            if 200 <= status < 300:
                self._metrics.notifications.labels(self.kind, "sent").inc()
                return Outcome.SENT
            if 400 <= status < 500 and status != 429:
                self._metrics.notifications.labels(self.kind, "failed").inc()
                log.warning("%s: %s answered %d, not retrying: %s", self.kind, self.name,
                            status, detail)
                return Outcome.REJECTED
            if attempt == retry.attempts:
                break
            wait = delay if retry_after is None else retry_after
            if wait > retry.max_backoff:
                self._not_before = time.monotonic() + wait
                break
            if self._stopping.wait(wait):
                break
            delay = min(delay * 2, retry.max_backoff)
        self._metrics.notifications.labels(self.kind, "failed").inc()
        log.warning("%s: %s failed after %d attempt(s): %s", self.kind, self.name, attempt,
                    f"{status} {detail}" if status else detail)
        return Outcome.FAILED

    def _once(self, url: str, data: bytes) -> tuple[int, str, float | None]:
        """(status, detail, Retry-After seconds); status 0 when there was no answer."""
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=self._retry.timeout) as response:
                response.read()
                return response.status, "", None
        except urllib.error.HTTPError as exc:
            body = exc.read()[:300].decode(errors="replace").strip()
            return exc.code, body, _retry_after(exc.headers.get("Retry-After"))
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc)), None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Notifier(ABC):
    """Decides which alerts it owes a message and sends them."""

    kind: ClassVar[str]

    def __init__(self, sender: HttpSender, *, key: str) -> None:
        self.sender = sender
        # Stable across restarts for the same target, whatever its place in the config.
        self.id = f"{self.kind}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    @abstractmethod
    def due(self, alert: AlertRecord, last: Delivery | None, now_ns: int) -> bool:
        """Whether `alert` must be sent now, given what this notifier last sent about it."""

    @abstractmethod
    def send(self, alerts: Sequence[AlertRecord], now_ns: int) -> list[Delivery]:
        """Send the due alerts; return the deliveries to remember (none for a failure
        worth retrying next round)."""

    def _post_groups(self, url: str, alerts: Sequence[AlertRecord], now_ns: int,
                     message: Callable[[Sequence[AlertRecord]], Any]) -> list[Delivery]:
        """One message per alertname and service, each posted to `url`."""
        delivered = []
        for group in groups(alerts):
            delivered += self._deliveries(group, self.sender.post(url, message(group)), now_ns)
        return delivered

    def _deliveries(self, alerts: Sequence[AlertRecord], outcome: Outcome,
                    now_ns: int) -> list[Delivery]:
        if outcome is Outcome.FAILED:
            return []
        return [Delivery(fingerprint=a.fingerprint, notifier=self.id, state=a.state,
                         outcome="sent" if outcome is Outcome.SENT else "rejected",
                         sent_ns=now_ns) for a in alerts]


class AlertmanagerNotifier(Notifier):
    kind = "alertmanager"

    def __init__(self, target: AlertmanagerTarget, config: AlertsConfig, sender: HttpSender,
                 external_url: Callable[[], str]) -> None:
        super().__init__(sender, key=target.url)
        self.url = target.url.rstrip("/") + "/api/v2/alerts"
        self._resend_ns = int(config.resend_delay * 1e9)
        self._retention_ns = int(config.resolved_retention * 1e9)
        self._resend_delay_s = config.resend_delay
        self._external_url = external_url

    def due(self, alert: AlertRecord, last: Delivery | None, now_ns: int) -> bool:
        if alert.state == "pending":
            return False
        resend = (last is None or last.state != alert.state
                  or _elapsed(last, now_ns, self._resend_ns))
        if alert.state == "firing":
            return resend or (last is not None and last.sent_ns < (alert.fired_ns or 0))
        return now_ns - (alert.resolved_ns or 0) <= self._retention_ns and resend

    def send(self, alerts: Sequence[AlertRecord], now_ns: int) -> list[Delivery]:
        body = [self.payload(a, now_ns) for a in alerts]
        return self._deliveries(alerts, self.sender.post(self.url, body), now_ns)

    def payload(self, alert: AlertRecord, now_ns: int) -> dict[str, Any]:
        if alert.state == "firing":
            valid_s = 4 * max(alert.source_interval_s, self._resend_delay_s)
            ends = now_ns + int(valid_s * 1e9)
        else:
            ends = alert.resolved_ns or now_ns
        return {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
                "startsAt": rfc3339(alert.fired_ns or alert.active_ns),
                "endsAt": rfc3339(ends),
                "generatorURL": generator_url(self._external_url(), alert)}


def _elapsed(last: Delivery, now_ns: int, interval_ns: int) -> bool:
    """Whether `interval_ns` has passed since `last` was sent, give or take how late an
    evaluation starts (so a resend every minute is not skipped for a few milliseconds)."""
    return now_ns + min(_LATENESS_NS, interval_ns // 2) - last.sent_ns >= interval_ns


class TransitionNotifier(Notifier):
    """Told that an alert fired, reminded every `repeat_interval_s` while it keeps firing
    (0 = never), and told once that it resolved."""

    def __init__(self, sender: HttpSender, *, key: str, send_resolved: bool,
                 repeat_interval_s: float) -> None:
        super().__init__(sender, key=key)
        self.send_resolved = send_resolved
        self._repeat_ns = int(repeat_interval_s * 1e9)

    def due(self, alert: AlertRecord, last: Delivery | None, now_ns: int) -> bool:
        if alert.state == "firing":
            if (last is None or last.state != "firing"
                    or last.sent_ns < (alert.fired_ns or 0)):  # fired again since
                return True
            # A receiver that refused the alert (4xx) is not asked again.
            return (self._repeat_ns > 0 and last.outcome == "sent"
                    and _elapsed(last, now_ns, self._repeat_ns))
        if alert.state == "resolved":
            return (self.send_resolved and last is not None and last.state == "firing"
                    and last.outcome == "sent")
        return False


class WebhookNotifier(TransitionNotifier):
    """Alertmanager's webhook JSON (version 4), one message per alertname and service, so
    every bridge written for Alertmanager (Teams, Discord, ntfy, ...) works unchanged."""

    kind = "webhook"

    def __init__(self, target: WebhookTarget, sender: HttpSender,
                 external_url: Callable[[], str]) -> None:
        super().__init__(sender, key=target.url, send_resolved=target.send_resolved,
                         repeat_interval_s=target.repeat_interval)
        self.url = target.url
        self.max_alerts = target.max_alerts
        self._external_url = external_url

    def send(self, alerts: Sequence[AlertRecord], now_ns: int) -> list[Delivery]:
        return self._post_groups(self.url, alerts, now_ns, lambda group: webhook_message(
            group, self._external_url(), max_alerts=self.max_alerts))


class SlackNotifier(TransitionNotifier):
    """A Slack incoming webhook: one message per alertname and service, text plus blocks."""

    kind = "slack"

    def __init__(self, target: SlackTarget, sender: HttpSender,
                 external_url: Callable[[], str]) -> None:
        super().__init__(sender, key=target.url, send_resolved=target.send_resolved,
                         repeat_interval_s=target.repeat_interval)
        self.url = target.url
        self._external_url = external_url

    def send(self, alerts: Sequence[AlertRecord], now_ns: int) -> list[Delivery]:
        return self._post_groups(self.url, alerts, now_ns,
                                 lambda group: slack_message(group, self._external_url()))


class PagerDutyNotifier(TransitionNotifier):
    """PagerDuty Events API v2: a trigger when an alert fires, a resolve when it resolves,
    both under a dedup_key derived from the alert's fingerprint.

    PagerDuty keeps the incident and its escalation itself, so repeats are off by default:
    a repeated trigger with the same dedup_key joins the open incident without paging
    again, and re-opens (pages anew) only an incident someone resolved by hand while the
    alert kept firing, which is what `repeat_interval` on a PagerDuty target is for."""

    kind = "pagerduty"

    def __init__(self, target: PagerDutyTarget, sender: HttpSender,
                 external_url: Callable[[], str]) -> None:
        self._routing_key = target.key()
        super().__init__(sender, key=f"{target.url} {self._routing_key}",
                         send_resolved=target.send_resolved,
                         repeat_interval_s=target.repeat_interval)
        self.url = target.url
        self._external_url = external_url

    def send(self, alerts: Sequence[AlertRecord], now_ns: int) -> list[Delivery]:
        delivered = []
        for alert in alerts:
            body = pagerduty_event(alert, self._routing_key, self._external_url())
            delivered += self._deliveries([alert], self.sender.post(self.url, body), now_ns)
        return delivered


# -- payloads ----------------------------------------------------------------------------------


def generator_url(external_url: str, alert: AlertRecord) -> str:
    query = urllib.parse.urlencode({"alertname": alert.alertname})
    return f"{external_url.rstrip('/')}/api/v1/alerts?{query}"


def dedup_key(alert: AlertRecord) -> str:
    return hashlib.sha256(f"driftwatch/{alert.fingerprint}".encode()).hexdigest()


def groups(alerts: Sequence[AlertRecord]) -> list[list[AlertRecord]]:
    """Alerts grouped by alertname and service, as Alertmanager's usual group_by."""
    grouped: dict[tuple[str, str], list[AlertRecord]] = {}
    for alert in alerts:
        grouped.setdefault(_group_key(alert), []).append(alert)
    return list(grouped.values())


def _group_key(alert: AlertRecord) -> tuple[str, str]:
    return alert.alertname, alert.labels.get("service", "")


def _group_labels(alert: AlertRecord) -> dict[str, str]:
    return {k: alert.labels[k] for k in ("alertname", "service") if k in alert.labels}


def _common(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


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
    return f"[{status}] {alerts[0].alertname}" + (f" {service}" if service else "")


def _links(alert: AlertRecord) -> list[tuple[str, str]]:
    names = (("dashboard_url", "Dashboard"), ("runbook_url", "Runbook"))
    return [(alert.annotations[key], text) for key, text in names if alert.annotations.get(key)]


def slack_message(alerts: Sequence[AlertRecord], external_url: str) -> dict[str, Any]:
    title = _title(alerts)
    first = alerts[0]
    summary = first.annotations.get("summary", "")
    links = " ".join(f"<{url}|{text}>" for url, text in _links(first))
    text = f"{title} – {summary}" + (f" {links}" if links else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(title)}*"}}]
    for alert in alerts[:_SLACK_MAX_ALERTS]:
        lines = [f"*{_escape(alert.annotations.get('summary', alert.alertname))}*"
                 + ("" if alert.state == "firing" else " (resolved)")]
        for key in ("description", "explanation", "examples"):
            if alert.annotations.get(key):
                lines.append(_escape(alert.annotations[key]))
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())
                           if k not in ("alertname",))
        lines.append(f"_{_escape(labels)}_")
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
        context = [f"<{url}|{text}>" for url, text in _links(alert)]
        context.append(f"<{generator_url(external_url, alert)}|driftwatch>")
        blocks.append({"type": "context",
                       "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    if len(alerts) > _SLACK_MAX_ALERTS:
        more = len(alerts) - _SLACK_MAX_ALERTS
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"and {more} more (`driftwatch alerts`)"}]})
    return {"text": text, "blocks": blocks}


def _escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pagerduty_event(alert: AlertRecord, routing_key: str, external_url: str) -> dict[str, Any]:
    key = dedup_key(alert)
    if alert.state != "firing":
        return {"routing_key": routing_key, "dedup_key": key, "event_action": "resolve"}
    labels = alert.labels
    service = labels.get("service")
    summary = alert.annotations.get("summary") or alert.alertname
    payload: dict[str, Any] = {
        "summary": f"[{labels.get('severity', '')}] {summary}"[:1024],
        "source": f"driftwatch/{service}" if service else "driftwatch",
        "severity": "critical" if labels.get("severity") == "page" else "warning",
        "timestamp": rfc3339(alert.fired_ns or alert.active_ns),
        "class": alert.alertname,
        "custom_details": {**alert.annotations, "labels": dict(labels),
                           "value": alert.value},
    }
    if service:
        payload["group"] = service
    if labels.get("model"):
        payload["component"] = labels["model"]
    event: dict[str, Any] = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
        "payload": payload, "client": "driftwatch",
        "client_url": generator_url(external_url, alert)}
    links = [{"href": url, "text": text} for url, text in _links(alert)]
    if links:
        event["links"] = links
    return event


# -- dispatch ----------------------------------------------------------------------------------


def build_notifiers(config: AlertsConfig, metrics: SelfMetrics, stopping: threading.Event,
                    external_url: Callable[[], str]) -> list[Notifier]:
    targets = config.notifiers
    retry = targets.retry

    def sender(kind: str, url: str) -> HttpSender:
        return HttpSender(kind, retry, metrics, stopping,
                          name=urllib.parse.urlsplit(url).netloc or url)

    notifiers: list[Notifier] = []
    for am in targets.alertmanager:
        notifiers.append(AlertmanagerNotifier(am, config, sender("alertmanager", am.url),
                                              external_url))
    for hook in targets.webhook:
        notifiers.append(WebhookNotifier(hook, sender("webhook", hook.url), external_url))
    for slack in targets.slack:
        notifiers.append(SlackNotifier(slack, sender("slack", slack.url), external_url))
    for pd in targets.pagerduty:
        notifiers.append(PagerDutyNotifier(pd, sender("pagerduty", pd.url), external_url))
    return notifiers


class Dispatcher:
    """Runs each notifier's deliveries in its own worker thread; a notifier still busy with
    the last round skips this one (the next round picks up what is due)."""

    def __init__(self, notifiers: Sequence[Notifier], state: SqliteAlertState,
                 stopping: threading.Event) -> None:
        self.notifiers = tuple(notifiers)
        self._state = state
        self._stopping = stopping
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.notifiers)),
                                        thread_name_prefix="notify")
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def owes(self, alert: AlertRecord, deliveries: dict[tuple[str, str], Delivery],
             now_ns: int) -> bool:
        """Whether any notifier still has to send something about `alert`."""
        return any(n.due(alert, deliveries.get((alert.fingerprint, n.id)), now_ns)
                   for n in self.notifiers)

    def kick(self, now_ns: int) -> None:
        for notifier in self.notifiers:
            with self._lock:
                if self._stopping.is_set() or notifier.id in self._busy:
                    continue
                self._busy.add(notifier.id)
                self._pool.submit(self._deliver, notifier, now_ns)

    def idle(self) -> bool:
        with self._lock:
            return not self._busy

    def _deliver(self, notifier: Notifier, now_ns: int) -> None:
        try:
            if notifier.sender.paused():
                return
            deliveries = self._state.deliveries()
            due = [a for a in self._state.alerts()
                   if notifier.due(a, deliveries.get((a.fingerprint, notifier.id)), now_ns)]
            if due:
                self._state.record(notifier.send(due, now_ns))
        except Exception:
            log.exception("%s notifier failed; the next evaluation retries", notifier.kind)
        finally:
            with self._lock:
                self._busy.discard(notifier.id)

    async def start(self) -> None:
        """Nothing to open: the workers start with the first delivery."""

    async def stop(self) -> None:
        """Interrupt backoff waits and let requests in flight finish (each is bounded by
        the retry timeout); what was not delivered is sent after the next start."""
        with self._lock:
            self._stopping.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True)
