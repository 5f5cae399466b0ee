"""Where alerts go: Alertmanager, a webhook (Alertmanager's JSON, version 4), Slack and
PagerDuty, and the dispatcher that runs their deliveries off the event loop. What each is
sent, escaped for where it lands, is built in `monitor.alerting.payloads`.

Alertmanager gets what Prometheus sends it: every firing alert with endsAt = now + 4 x
max(source interval, resend_delay), re-sent every resend_delay, and every resolved one with
endsAt = its resolve time, re-sent for resolved_retention; never a pending one. The others
are told about transitions, as Alertmanager tells its receivers: an alert fired, then again
every repeat_interval while it keeps firing (Alertmanager's repeat_interval; 0 = never), and
an alert resolved (unless send_resolved is off). What each notifier was told, and when, is
stored (`monitor.store.alert_state`), so a restart sends neither twice nor too little, and the
next reminder is due repeat_interval after the last one sent, whenever the daemon started.

A request that fails with 408, 429, 5xx or no answer is retried with exponential backoff,
honouring Retry-After (`monitor.core.http`); a Retry-After longer than max_backoff pauses
that notifier until then instead; any other 4xx is final (the alert is marked rejected for
that notifier and not sent again). Each notifier delivers in its own worker thread, so a slow
or failing one holds up neither the others nor detection or ingest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, ClassVar

from monitor.alerting.config import (
    AlertmanagerTarget,
    AlertsConfig,
    PagerDutyTarget,
    RetryConfig,
    SlackTarget,
    WebhookTarget,
)
from monitor.alerting.payloads import (
    generator_url,
    groups,
    pagerduty_event,
    slack_message,
    webhook_message,
)
from monitor.core.http import HttpError, HttpSender, RetryPolicy, SystemClock
from monitor.core.metrics import SelfMetrics
from monitor.core.records import rfc3339
from monitor.store.alert_state import AlertRecord, Delivery, SqliteAlertState

log = logging.getLogger(__name__)

_LATENESS_NS = 1_000_000_000  # evaluations start a little late; don't skip a resend


class Outcome(StrEnum):
    SENT = "sent"
    REJECTED = "rejected"  # a 4xx other than 408 or 429: retrying cannot help
    FAILED = "failed"  # 408, 429, 5xx or no answer after every attempt: the next round retries


class NotificationSender:
    """POSTs one notifier's JSON through its own HttpSender, so a Retry-After pauses only
    that notifier, and counts what became of each message."""

    def __init__(self, kind: str, retry: RetryConfig, metrics: SelfMetrics,
                 stopping: threading.Event, *, name: str) -> None:
        self.kind = kind
        self.name = name  # for logs: never the whole URL (Slack's carries its secret)
        self._metrics = metrics
        self._http = HttpSender(RetryPolicy(
            attempts=retry.attempts, backoff_s=min(retry.backoff, retry.max_backoff),
            max_backoff_s=retry.max_backoff, timeout_s=retry.timeout,
            long_retry_after="give_up"), clock=SystemClock(stopping))
        self._not_before = 0.0  # monotonic; a Retry-After longer than we wait in a round
        for outcome in ("sent", "failed"):  # exported as 0 from the start, for rate()
            metrics.notifications.labels(kind, outcome)

    def paused(self) -> bool:
        return time.monotonic() < self._not_before

    def post(self, url: str, body: Any) -> Outcome:
        try:
            self._http.send_json("POST", url, body)
        except HttpError as exc:
            self._metrics.notifications.labels(self.kind, "failed").inc()
            return self._failed(exc)
        self._metrics.notifications.labels(self.kind, "sent").inc()
        return Outcome.SENT

    def _failed(self, exc: HttpError) -> Outcome:
        if 400 <= exc.status < 500 and exc.status not in self._http.policy.statuses:
            log.warning("%s: %s answered %d, not retrying: %s", self.kind, self.name,
                        exc.status, exc.excerpt)
            return Outcome.REJECTED
        if exc.retry_after_s is not None and exc.retry_after_s > self._http.policy.max_backoff_s:
            self._not_before = time.monotonic() + exc.retry_after_s
        log.warning("%s: %s failed after %d attempt(s): %s", self.kind, self.name,
                    exc.attempts, f"{exc.status} {exc.excerpt}" if exc.status else exc.reason)
        return Outcome.FAILED


class Notifier(ABC):
    """Decides which alerts it owes a message and sends them."""

    kind: ClassVar[str]

    def __init__(self, sender: NotificationSender, *, key: str) -> None:
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

    def __init__(self, target: AlertmanagerTarget, config: AlertsConfig, sender: NotificationSender,
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

    def __init__(self, sender: NotificationSender, *, key: str, send_resolved: bool,
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

    def __init__(self, target: WebhookTarget, sender: NotificationSender,
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

    def __init__(self, target: SlackTarget, sender: NotificationSender,
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

    def __init__(self, target: PagerDutyTarget, sender: NotificationSender,
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


# -- dispatch ----------------------------------------------------------------------------------


def build_notifiers(config: AlertsConfig, metrics: SelfMetrics, stopping: threading.Event,
                    external_url: Callable[[], str]) -> list[Notifier]:
    targets = config.notifiers
    retry = targets.retry

    def sender(kind: str, url: str) -> NotificationSender:
        return NotificationSender(kind, retry, metrics, stopping,
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
