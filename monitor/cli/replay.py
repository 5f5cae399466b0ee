"""`driftwatch replay FILE`: recorded traffic sent into a running daemon over OTLP/HTTP.

A recording is read line by line, in either of two shapes (they may even be mixed):
the OpenTelemetry Collector file exporter's JSON lines (one ExportTraceServiceRequest or
ExportLogsServiceRequest per line, ids in hex; metrics lines are skipped) and the output of
`driftwatch calls --json` (one call per line, sent as an OTel GenAI v1.37 chat span).

Times: by default the recording is moved so that it ends now, spacing kept, and sent as fast
as the daemon takes it; `--speed X` replays it live at X times the recorded pace (each span
moved to when it is sent); `--preserve-timestamps` keeps the recorded times, to backfill a
baseline from last week's recording. Moved spans get fresh ids (derived once per run, so
parent links hold); preserved ones keep theirs, so replaying a backfill twice stores each
call once. A malformed line is reported with its number and skipped; the rest is still sent.
Exit codes: 0 all sent and accepted, 1 a bad line, a refusal or an unreachable daemon,
2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from collectors.otlp_json import parse_object, read_object
from monitor.cli.progress import ProgressBar
from monitor.cli.recordings import (
    LineError,
    Retimer,
    call_span,
    calls_request,
    earliest,
    make_retimer,
    retime_logs,
    retime_span,
    retime_traces,
)
from monitor.config import load_config
from monitor.core.errors import BadRequest, ConfigError
from monitor.core.http import Clock, HttpError, HttpSender, RetryPolicy

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
CALLS_PER_REQUEST = 500
PACE_SLACK_S = 0.25  # with --speed, items due this close together share a request
RETRY_FOR_S = 120.0  # how long 503s and 429s are retried before the request counts refused


class ReplayError(Exception):
    """The replay cannot go on: the daemon is unreachable or refuses us as a client."""


# -- what was sent ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What a replay sent and what the daemon made of it."""

    lines: int = 0
    bad_lines: int = 0
    skipped_metrics: int = 0
    sent: Counter[str] = field(default_factory=Counter)  # by signal: spans, log records
    refused: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # refusal messages
    retries: int = 0

    @property
    def ok(self) -> bool:
        return self.bad_lines == 0 and not sum(self.refused.values())

    def summary(self, path: Path) -> str:
        parts = []
        for signal, noun in (("traces", "spans"), ("logs", "log records")):
            if self.sent[signal] or self.refused[signal]:
                accepted = self.sent[signal] - self.refused[signal]
                parts.append(f"{accepted:,} of {self.sent[signal]:,} {noun} accepted, "
                             f"{self.refused[signal]:,} refused")
        text = f"replayed {path}: {self.lines:,} lines; " + ("; ".join(parts) or "nothing sent")
        if self.bad_lines:
            text += f"; {self.bad_lines:,} bad lines skipped (see above)"
        if self.skipped_metrics:
            text += f"; {self.skipped_metrics:,} metrics lines skipped (metrics are not replayed)"
        if self.retries:
            text += f"; {self.retries:,} retries after 503/429"
        for reason, count in self.reasons.most_common(5):
            text += f"\n  refused x{count}: {reason}"
        return text


# -- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    rejected: int
    message: str = ""


class OtlpHttpSender:
    """POSTs protobuf export requests to a daemon's OTLP/HTTP receiver through
    `monitor.core.http`, retrying 503/429 (after their Retry-After, at most 30 s apart) for
    up to `retry_for_s`."""

    def __init__(self, endpoint: str, *, token: str | None = None,
                 retry_for_s: float = RETRY_FOR_S, timeout_s: float = 60.0,
                 clock: Clock | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        # The daemon says when to come back; the budget, not the count, ends the retries.
        policy = RetryPolicy(attempts=1000, backoff_s=1.0, max_backoff_s=30.0,
                             timeout_s=timeout_s, statuses=frozenset({429, 503}),
                             unanswered=False, budget_s=retry_for_s)
        headers = {"Content-Type": "application/x-protobuf"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpSender(policy, clock=clock, headers=headers)

    @property
    def retries(self) -> int:
        return self._http.retries

    def send(self, signal: str, request: Message, items: int) -> Outcome:
        """Export one request of `items` spans or log records; how many were refused.

        :raises ReplayError: the receiver cannot be reached, or refuses our credentials.
        """
        url = f"{self.endpoint}/v1/{signal}"
        try:
            response = self._http.request("POST", url, body=request.SerializeToString())
        except HttpError as exc:
            if not exc.status:
                raise ReplayError(f"cannot reach the OTLP/HTTP receiver at {self.endpoint} "
                                  f"({exc.reason}); is `driftwatch run` running? Use "
                                  "--endpoint URL to name another") from None
            message = f"HTTP {exc.status}: {_status_message(exc.body)}"
            if exc.status in (401, 403, 404):
                raise ReplayError(f"{url} answered {message}") from None
            return Outcome(items, message)
        return Outcome(*_partial_success(signal, response.body))


def _partial_success(signal: str, data: bytes) -> tuple[int, str]:
    response = (trace_service_pb2.ExportTraceServiceResponse() if signal == "traces"
                else logs_service_pb2.ExportLogsServiceResponse())
    try:
        response.ParseFromString(data)
    except DecodeError:
        return 0, ""
    partial = response.partial_success
    rejected = partial.rejected_spans if signal == "traces" else partial.rejected_log_records
    return int(rejected), str(partial.error_message)


def _status_message(data: bytes) -> str:
    status = status_pb2.Status()
    try:
        status.ParseFromString(data)
    except DecodeError:
        return data[:200].decode(errors="replace")
    return str(status.message) or data[:200].decode(errors="replace")


# -- the replay -------------------------------------------------------------------------------


@dataclass
class _Item:
    signal: str  # "traces" | "logs" | "calls"
    request: Any  # an export request, or for calls a (service, span) pair
    items: int
    start_ns: int


class Replay:
    """Reads a recording and sends it; `run()` returns the tally."""

    def __init__(self, path: Path, sender: OtlpHttpSender, retimer: Retimer, *,
                 err: TextIO = sys.stderr) -> None:
        self.path = path
        self.sender = sender
        self.retimer = retimer
        self.err = err
        self.tally = Tally()
        self._bar = ProgressBar(path.stat().st_size, err)
        self._batch: list[_Item] = []
        self._batch_due: float | None = None
        self._began = time.monotonic()

    def run(self) -> Tally:
        done = 0
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                done += len(raw)
                if not raw.strip():
                    continue
                self.tally.lines += 1
                try:
                    item = self._parse(raw)
                except LineError as exc:
                    self._bad(number, str(exc))
                    continue
                if item is not None:
                    self._add(item)
                self._bar.update(done, self._note())
        self._flush()
        self.tally.retries = self.sender.retries
        self._bar.close(done, self._note())
        return self.tally

    def _note(self) -> str:
        return (f"{self.tally.sent['traces']:,} spans, {self.tally.sent['logs']:,} log records "
                "sent")

    def _bad(self, number: int, message: str) -> None:
        self.tally.bad_lines += 1
        self._bar.clear()
        print(f"driftwatch: {self.path}:{number}: {message}; line skipped", file=self.err)

    def _parse(self, raw: bytes) -> _Item | None:
        try:
            data = read_object(raw)
        except BadRequest as exc:
            raise LineError(str(exc)) from None
        if "resourceSpans" in data or "resource_spans" in data:
            return self._otlp(data, "traces", trace_service_pb2.ExportTraceServiceRequest)
        if "resourceLogs" in data or "resource_logs" in data:
            return self._otlp(data, "logs", logs_service_pb2.ExportLogsServiceRequest)
        if "resourceMetrics" in data or "resource_metrics" in data:
            self.tally.skipped_metrics += 1
            return None
        if "trace_id" in data and "span_id" in data:
            service, span = call_span(data)
            return _Item("calls", (service, span), 1, span.start_time_unix_nano)
        raise LineError("neither an OTLP export request (resourceSpans, resourceLogs) nor a "
                        "`driftwatch calls --json` object (trace_id, span_id, ...)")

    def _otlp(self, data: dict[str, Any], signal: str, kind: type[Message]) -> _Item:
        try:
            request: Any = parse_object(data, kind)
        except BadRequest as exc:
            raise LineError(str(exc)) from None
        start = earliest(request)
        count = (retime_traces(request, self.retimer) if signal == "traces"
                 else retime_logs(request, self.retimer))
        return _Item(signal, request, count, start)

    def _add(self, item: _Item) -> None:
        due = self.retimer.due_s(item.start_ns) if item.start_ns else None
        if self._batch and (
                item.signal != "calls" or self._batch[0].signal != "calls"
                or len(self._batch) >= CALLS_PER_REQUEST
                or (due is not None and self._batch_due is not None
                    and due > self._batch_due + PACE_SLACK_S)):
            self._flush()
        if not self._batch:
            self._batch_due = due
            if due is not None:
                time.sleep(max(0.0, self._began + due - time.monotonic()))
        if item.signal == "calls":
            retime_span(item.request[1], self.retimer)
        self._batch.append(item)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if batch[0].signal == "calls":
            signal, request = "traces", calls_request([i.request for i in batch])
        else:
            signal, request = batch[0].signal, batch[0].request
        items = sum(i.items for i in batch)
        outcome = self.sender.send(signal, request, items)
        self.tally.sent[signal] += items
        if outcome.rejected:
            self.tally.refused[signal] += outcome.rejected
            self.tally.reasons[outcome.message or "refused without a message"] += 1


# -- command line -----------------------------------------------------------------------------


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 10, got: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got: {text!r}")
    return value


def add_replay_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `replay` to the `driftwatch` CLI's subparsers; its handler returns an exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="send recorded traffic into a running daemon",
        description="Send a recording into a running daemon over OTLP/HTTP: the "
        "OpenTelemetry Collector file exporter's JSON lines (traces and logs), or "
        "`driftwatch calls --json` output. By default the recording is moved to end now "
        "and sent as fast as the daemon takes it.")
    parser.add_argument("file", type=Path, help="the recording, one JSON object per line")
    parser.add_argument("--endpoint", help="OTLP/HTTP receiver URL (default: from the config, "
                        "http://127.0.0.1:4318)")
    parser.add_argument("--config", type=Path, help="config naming the receiver and its token")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--speed", type=_speed, metavar="X",
                        help="replay live at X times the recorded pace, each span moved to "
                        "when it is sent")
    timing.add_argument("--preserve-timestamps", action="store_true",
                        help="keep the recorded times and ids (backfill a baseline)")
    parser.set_defaults(handler=run_replay)
    return parser


def run_replay(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"driftwatch: replay: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(args.config)
    receiver = config.receivers.otlp_http
    scheme = "https" if receiver.tls else "http"
    endpoint = args.endpoint or f"{scheme}://{receiver.endpoint}"
    token = receiver.auth.token() if receiver.auth else None
    retimer = make_retimer(path, preserve=args.preserve_timestamps, speed=args.speed)
    replay = Replay(path, OtlpHttpSender(endpoint, token=token), retimer)
    try:
        tally = replay.run()
    except ReplayError as exc:
        print(f"driftwatch: replay: {exc}", file=sys.stderr)
        print(f"stopped early; {replay.tally.summary(path)}", file=sys.stderr)
        return EXIT_FAILURE
    print(tally.summary(path), file=sys.stderr)
    return EXIT_OK if tally.ok else EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """`python -m monitor.cli.replay FILE ...`, the same as `driftwatch replay FILE ...`."""
    parser = argparse.ArgumentParser(prog="driftwatch")
    add_replay_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"driftwatch: invalid config:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
