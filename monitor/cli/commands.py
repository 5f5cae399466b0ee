"""The `driftwatch` command line. The only module that configures logging.

Commands: run (the daemon), validate (a config, without starting anything), calls (what was
stored), status (latest detector results), compare (two models, versions or variants of a
service), jobs (list, run one now), baseline (pin, list),
alerts (pending and firing), rules export (as Prometheus rules), dashboards export (Grafana),
version. The commands about results and alerts talk to the running daemon's ops API.
Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.cli.client import OpsClient, OpsError
from monitor.cli.demo import add_demo_command
from monitor.cli.replay import add_replay_command
from monitor.cli.terminal import OneLineFormatter, printable
from monitor.config import Config, load_config
from monitor.core.components import CallQuery
from monitor.core.errors import ConfigError, StoreError
from monitor.core.records import LLMCall, Segment
from monitor.core.timeparse import TimeParseError, parse_time
from monitor.jobs.drift.details import DETECTOR as DRIFT
from monitor.jobs.drift.details import DriftDetails
from monitor.ops.reports import report_path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


_TIME_OPTIONS = frozenset({"--from", "--to", "--since", "--until"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_relative_times(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"driftwatch: invalid config:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"driftwatch: store error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OpsError as exc:
        print(f"driftwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_OK
    return code


def _relative_times(argv: Sequence[str]) -> list[str]:
    """`--from -2h` as `--from=-2h`: argparse would take "-2h" for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _TIME_OPTIONS and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftwatch", description="Watch LLM apps through their OpenTelemetry traces.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon", description="Run the daemon: OTLP "
                         "receivers, store, scheduled jobs and the ops server.")
    run.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check a config file without starting anything")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true", help="print the effective config")
    validate.set_defaults(handler=_cmd_validate)

    calls = sub.add_parser("calls", help="list stored LLM calls",
                           description="List stored LLM calls, oldest first, from the store.")
    calls.add_argument("--config", type=Path, help="config file naming the store")
    calls.add_argument("--store", type=Path, help="store path (overrides the config)")
    calls.add_argument("--service")
    calls.add_argument("--model")
    calls.add_argument("--since", default="1h", help="RFC 3339 or relative like 2h (default 1h)")
    calls.add_argument("--until", help="RFC 3339 or relative")
    calls.add_argument("--limit", type=int, default=1000)
    calls.add_argument("--json", action="store_true", help="one JSON object per line")
    calls.set_defaults(handler=_cmd_calls)

    status = sub.add_parser("status", help="latest detector results per segment",
                            description="Latest result of every detector per segment, from "
                            "the running daemon.")
    _ops_args(status)
    status.add_argument("--detector", choices=["drift", "toxicity", "latency", "cost",
                                               "evaluation", "canary"])
    status.add_argument("--service")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.set_defaults(handler=_cmd_status)

    compare = sub.add_parser(
        "compare", help="compare two models, versions or variants of a service",
        description="Compare two sides of a service (KEY=VALUE, KEY: model, version or "
        "variant) measure by measure: latency, errors, tokens, cost per call, toxicity, "
        "completion drift, each evaluation's pass rate and score, each with its test and a "
        "verdict. Runs on the daemon; prints its report page.")
    compare.add_argument("--service", required=True)
    compare.add_argument("--a", required=True, metavar="KEY=VALUE",
                         help="side A, e.g. model=gpt-4o or version=1.4.1 (the baseline)")
    compare.add_argument("--b", required=True, metavar="KEY=VALUE",
                         help="side B, e.g. model=gpt-4o-mini or version=1.4.2")
    compare.add_argument("--since", default="1h",
                         help="RFC 3339 or relative like 2h (default 1h)")
    compare.add_argument("--until", help="RFC 3339 or relative (default now)")
    compare.add_argument("--json", action="store_true", help="one JSON object per measure")
    _ops_args(compare)
    compare.set_defaults(handler=_cmd_compare)

    jobs = sub.add_parser("jobs", help="list scheduled jobs or run one now")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    jobs_list = jobs_sub.add_parser("list", help="the daemon's jobs")
    _ops_args(jobs_list)
    jobs_list.set_defaults(handler=_cmd_jobs_list)
    jobs_run = jobs_sub.add_parser("run", help="run a job now and print its results",
                                   description="Run a scheduled job (drift, toxicity, latency, "
                                   "retention) on the running daemon now; print its results.")
    jobs_run.add_argument("name")
    _ops_args(jobs_run)
    jobs_run.add_argument("--json", action="store_true", help="one JSON object per line")
    jobs_run.set_defaults(handler=_cmd_jobs_run)

    baseline = sub.add_parser("baseline", help="pin or list reference windows")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", metavar="ACTION",
                                           required=True)
    pin = baseline_sub.add_parser(
        "set", help="pin a segment's reference window",
        description="Pin the window drift, toxicity and latency compare against. Without "
        "--model it pins the whole service, and its models follow unless pinned themselves.")
    pin.add_argument("--service", required=True)
    pin.add_argument("--model")
    pin.add_argument("--from", dest="start", required=True,
                     help="RFC 3339 or relative like -2h")
    pin.add_argument("--to", dest="end", required=True, help="RFC 3339 or relative like -1h")
    _ops_args(pin)
    pin.set_defaults(handler=_cmd_baseline_set)
    listing = baseline_sub.add_parser("list", help="every segment's baseline")
    _ops_args(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_cmd_baseline_list)

    alerts = sub.add_parser("alerts", help="pending and firing alerts",
                            description="Alerts of the running daemon and their state: "
                            "pending (not yet sent), firing, resolved (with --all).")
    _ops_args(alerts)
    alerts.add_argument("--all", action="store_true",
                        help="also resolved alerts still being sent")
    alerts.add_argument("--json", action="store_true", help="one JSON object per line")
    alerts.set_defaults(handler=_cmd_alerts)

    rules = sub.add_parser("rules", help="export the alert rules for Prometheus")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rules_export = rules_sub.add_parser(
        "export", help="write the alert rules as a Prometheus rule file",
        description="Write the config's alert rules (the shipped ones with your overrides) "
        "as Prometheus alerting and recording rules over driftwatch's metrics.")
    rules_export.add_argument("file", help="the rule file to write (- for stdout)")
    rules_export.add_argument("--config", type=Path, help="config file with alerts.rules")
    rules_export.set_defaults(handler=_cmd_rules_export)

    boards = sub.add_parser("dashboards", help="export the Grafana dashboards")
    boards_sub = boards.add_subparsers(dest="dashboards_command", metavar="ACTION",
                                       required=True)
    boards_export = boards_sub.add_parser(
        "export", help="write the dashboards and their Grafana provisioning",
        description="Write the dashboards (JSON) and Grafana provisioning files for them "
        "and a Prometheus data source under DIR.")
    boards_export.add_argument("directory", type=Path)
    boards_export.add_argument("--prometheus-url", default="http://localhost:9090",
                               help="where Grafana reaches Prometheus")
    boards_export.set_defaults(handler=_cmd_dashboards_export)

    add_replay_command(sub)
    add_demo_command(sub)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda _args: print(f"driftwatch {__version__}") or EXIT_OK)
    return parser


def _ops_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file naming the ops endpoint")
    parser.add_argument("--ops", help="ops API URL (default: from the config, "
                        "http://127.0.0.1:9464)")


def _client(args: argparse.Namespace) -> OpsClient:
    return OpsClient.from_config(load_config(args.config), args.ops)


def _setup_logging(config: Config) -> None:
    level = getattr(logging, config.log.level.upper())
    handler = logging.StreamHandler()
    if config.log.format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import serve  # the heavy imports only for the daemon

    config = load_config(args.config)
    _setup_logging(config)
    try:
        return asyncio.run(serve(config))
    except OSError as exc:
        print(f"driftwatch: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE


def _cmd_validate(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    if args.json:
        print(json.dumps(masked(config.model_dump(mode="json", by_alias=True)), indent=2))
    else:
        print(f"{args.file}: ok")
    return EXIT_OK


# Config keys whose values are secrets; a *_file key beside them shows where the secret is.
SECRET_KEYS = frozenset({"bearer_token", "routing_key", "api_key", "password", "secret"})
MASK = "***"


def masked(value: Any, key: str = "") -> Any:
    """The effective config with every secret value replaced by "***": the token and key
    fields, header values (authorization headers carry tokens) and Slack webhook URLs (the
    URL is the credential)."""
    if value is None:
        return None
    if key in SECRET_KEYS or (key == "headers" and isinstance(value, dict)):
        return {k: MASK for k in value} if isinstance(value, dict) else MASK
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key == "slack":
            return [{**masked(v), "url": MASK} for v in value]
        return [masked(v) for v in value]
    return value


def _cmd_calls(args: argparse.Namespace) -> int:
    from monitor.store.sqlite import SqliteStore

    path = args.store or load_config(args.config).store.path
    if not Path(path).exists():
        print(f"driftwatch: no store at {path} (has the daemon run with this config?)",
              file=sys.stderr)
        return EXIT_FAILURE
    now = time.time_ns()
    try:
        since = parse_time(args.since, now_ns=now)
        until = parse_time(args.until, now_ns=now) if args.until else None
    except TimeParseError as exc:
        print(f"driftwatch: --since/--until: {exc}", file=sys.stderr)
        return EXIT_USAGE
    store = SqliteStore(Path(path))
    query = CallQuery(service=args.service, model=args.model, since_ns=since, until_ns=until,
                      limit=args.limit)
    try:  # printed page by page as the store gives them: any answer in bounded memory
        pages = store.call_pages(query)
        if args.json:
            for page in pages:
                for call in page:
                    print(json.dumps(call.to_json(), ensure_ascii=False))
        else:
            _print_calls_table(pages)
    finally:
        store.close()
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    answer = client.get("/api/v1/results", detector=args.detector, service=args.service)
    _print_results(answer["results"], as_json=args.json, ops_url=client.url)
    segments = answer.get("segments") or {}
    if not args.json and segments.get("unwatched"):
        print(f"{segments['unwatched']} segments not watched: more than jobs.max_segments "
              f"({segments['limit']}) have calls; the busiest {segments['watched']} are")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    client = _client(args)
    body = {"service": args.service, "a": args.a, "b": args.b, "since": args.since}
    if args.until:
        body["until"] = args.until
    found = client.post("/api/v1/compare", body)
    if args.json:
        for m in found["measures"]:
            print(json.dumps({"id": found["id"], "service": found["service"],
                              "selector_a": found["a"], "selector_b": found["b"], **m},
                             ensure_ascii=False))
        return EXIT_OK
    print(f"{printable(found['service'])}: A {printable(found['a'])} vs B "
          f"{printable(found['b'])}, calls from {found['since']} to {found['until']}")
    print(f"{'MEASURE':<24} {'A':>10} {'B':>10} {'N A/B':>13} {'P':>8}  VERDICT")
    for m in found["measures"]:
        n = f"{m['n_a']}/{m['n_b']}"
        p = "-" if m["p_value"] is None else f"{m['p_value']:.2g}"
        state = {True: "WORSE" if m["worse"] else "differs", False: "same",
                 None: "no data"}[m["significant"]]
        print(f"{_cell(m['label'], 24):<24} {_value(m['a']):>10} {_value(m['b']):>10} "
              f"{n:>13} {p:>8}  {state:<8} {printable(m['verdict'])}")
    print(printable(found["verdict"]))
    print(f"report: {client.url}{found['report']}")
    return EXIT_OK


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cmd_jobs_list(args: argparse.Namespace) -> int:
    for name in _client(args).get("/api/v1/jobs")["jobs"]:
        print(name)
    return EXIT_OK


def _cmd_jobs_run(args: argparse.Namespace) -> int:
    name = urllib.parse.quote(args.name, safe="")
    result = _client(args).post(f"/api/v1/jobs/{name}/run")["result"]
    if isinstance(result, list) and all(isinstance(r, dict) and "detector" in r
                                        for r in result):
        _print_results(result, as_json=args.json)
    elif isinstance(result, list):
        for item in result:
            print(json.dumps(item, ensure_ascii=False))
    else:
        print(json.dumps(result, ensure_ascii=False) if args.json
              else f"{args.name}: {json.dumps(result, ensure_ascii=False)}")
    return EXIT_OK


def _cmd_baseline_set(args: argparse.Namespace) -> int:
    pinned = _client(args).post("/api/v1/baselines", {
        "service": args.service, "model": args.model, "from": args.start, "to": args.end})
    segment = Segment(service=pinned["service"], model=pinned["model"])
    print(f"baseline pinned for {segment.label}: {pinned['from']} to {pinned['to']}")
    return EXIT_OK


def _cmd_baseline_list(args: argparse.Namespace) -> int:
    baselines = _client(args).get("/api/v1/baselines")["baselines"]
    if args.json:
        for b in baselines:
            print(json.dumps(b))
        return EXIT_OK
    if not baselines:
        print("no baselines yet")
    for b in baselines:
        segment = Segment(service=b["service"], model=b["model"]).label
        print(f"{_cell(segment, 40):<40} {b['source']:<7} {b['from']} to {b['to']}")
    return EXIT_OK


def _cmd_alerts(args: argparse.Namespace) -> int:
    answer = _client(args).get("/api/v1/alerts")
    alerts = [a for a in answer["alerts"] if args.all or a["state"] != "resolved"]
    if args.json:
        for alert in alerts:
            print(json.dumps(alert, ensure_ascii=False))
        return EXIT_OK
    if not answer.get("enabled", True):
        print("alerting is turned off (alerts.enabled: false)")
        return EXIT_OK
    if not alerts:
        print("no alerts")
        return EXIT_OK
    print(f"{'STATE':<9} {'ALERT':<26} {'SEVERITY':<8} {'SINCE (UTC)':<20} {'LABELS':<40} "
          "SUMMARY")
    for a in alerts:
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items())
                          if k not in ("alertname", "severity"))
        since = (a["starts_at"] or a["active_at"])[:19].replace("T", " ")
        print(f"{_cell(a['state'], 9):<9} {_cell(a['alertname'], 26):<26} "
              f"{_cell(a['labels'].get('severity', '-'), 8):<8} {_cell(since, 20):<20} "
              f"{_cell(labels, 40):<40} {printable(a['annotations'].get('summary', ''))}")
    return EXIT_OK


def _cmd_rules_export(args: argparse.Namespace) -> int:
    from monitor.alerting.rules_export import export_rules
    from monitor.daemon import DETECTORS

    text = export_rules(load_config(args.config), DETECTORS)
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text)
        print(f"wrote {args.file}")
    return EXIT_OK


def _cmd_dashboards_export(args: argparse.Namespace) -> int:
    from dashboards.export import export

    for path in export(args.directory, prometheus_url=args.prometheus_url):
        print(f"wrote {path}")
    return EXIT_OK


def _print_results(results: list[dict[str, Any]], *, as_json: bool,
                   ops_url: str | None = None) -> None:
    if as_json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False))
        return
    if not results:
        print("no detector results yet (jobs run on their schedule; "
              "`driftwatch jobs run drift` runs one now)")
        return
    print(f"{'DETECTOR':<10} {'SEGMENT':<36} {'DIR/EVAL':<12} {'STATE':<12} {'REF':>5} "
          f"{'CUR':>5} {'P':>8}  SUMMARY")
    for r in results:
        # a split segment is one version of its service: "support-bot version=1.4.2"
        segment = Segment(service=r["service"], model=r["model"], split=r.get("split")).title
        state = {True: "ANOMALOUS", False: "ok", None: "no data"}[r["anomalous"]]
        p = "-" if r["p_value"] is None else f"{r['p_value']:.2g}"
        # an evaluation result is about one evaluation (its name), as drift's is about a
        # direction
        about = r["direction"] or (r.get("details") or {}).get("evaluation") or "-"
        print(f"{_cell(r['detector'], 10):<10} {_cell(segment, 36):<36} "
              f"{_cell(str(about), 12):<12} {state:<12} {r['n_reference']:>5} "
              f"{r['n_current']:>5} {p:>8}  {printable(r['summary'])}")
        if r["detector"] == DRIFT and r["anomalous"]:
            for cluster in DriftDetails.from_json(r["details"]).clusters[:3]:
                example = (cluster.examples or ("",))[0]
                print(f"{'':<10} cluster {cluster.share_reference:.0%} -> "
                      f"{cluster.share_current:.0%}: {_cell(example, 90)}")
        report = report_path(r)
        if r["anomalous"] and report and ops_url:
            print(f"{'':<10} report: {ops_url}{report}")


def _print_calls_table(pages: Iterable[list[LLMCall]]) -> None:
    count = 0
    for page in pages:
        if not count:
            print(f"{'START (UTC)':<20} {'SERVICE':<18} {'MODEL':<22} {'DUR s':>7} "
                  f"{'STATUS':<6} {'IN':>6} {'OUT':>6} {'COST $':>9}  PROMPT")
        for c in page:
            prompt = c.prompt or "(not captured)"
            print(f"{c.start:%Y-%m-%d %H:%M:%S} {_cell(c.service, 18):<18} "
                  f"{_cell(c.model or '-', 22):<22} {c.duration_s:>7.3f} {c.status.value:<6} "
                  f"{_num(c.input_tokens):>6} {_num(c.output_tokens):>6} "
                  f"{_usd(c.cost_usd):>9}  {_cell(prompt, 60)}")
        count += len(page)
    print(f"{count} calls" if count else "no calls in that window")


def _cell(text: str, width: int) -> str:
    """A wire text as one table cell: control characters (ESC, CR, newline) made visible,
    so a hostile name can neither rewrite the terminal nor split the row; then cut."""
    return _cut(printable(text), width)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _usd(value: float | None) -> str:
    """A call's cost: "-" when unpriced; fractions of a cent keep four significant digits."""
    if value is None:
        return "-"
    return f"{value:.4f}" if value >= 0.01 else f"{value:.4g}"


if __name__ == "__main__":
    sys.exit(main())
