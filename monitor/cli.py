"""The `driftwatch` command line. The only module that configures logging.

Commands: run (the daemon), validate (a config, without starting anything), calls (what was
stored), version. Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__
from monitor.components import CallQuery
from monitor.config import Config, load_config
from monitor.errors import ConfigError, StoreError
from monitor.records import LLMCall
from monitor.timeparse import TimeParseError, parse_time

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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
    except BrokenPipeError:
        return EXIT_OK
    return code


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

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda _args: print(f"driftwatch {__version__}") or EXIT_OK)
    return parser


def _setup_logging(config: Config) -> None:
    level = getattr(logging, config.log.level.upper())
    handler = logging.StreamHandler()
    if config.log.format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
        print(config.model_dump_json(indent=2))
    else:
        print(f"{args.file}: ok")
    return EXIT_OK


def _cmd_calls(args: argparse.Namespace) -> int:
    from monitor.store import SqliteStore

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
    try:
        calls = store.calls(CallQuery(service=args.service, model=args.model, since_ns=since,
                                      until_ns=until, limit=args.limit))
    finally:
        store.close()
    if args.json:
        for call in calls:
            print(json.dumps(call.to_json(), ensure_ascii=False))
    else:
        _print_calls_table(calls)
    return EXIT_OK


def _print_calls_table(calls: list[LLMCall]) -> None:
    if not calls:
        print("no calls in that window")
        return
    header = f"{'START (UTC)':<20} {'SERVICE':<18} {'MODEL':<22} {'DUR s':>7} {'STATUS':<6} " \
             f"{'IN':>6} {'OUT':>6}  PROMPT"
    print(header)
    for c in calls:
        prompt = (c.prompt or "(not captured)").replace("\n", " ")
        print(f"{c.start:%Y-%m-%d %H:%M:%S} {_cut(c.service, 18):<18} "
              f"{_cut(c.model or '-', 22):<22} {c.duration_s:>7.3f} {c.status.value:<6} "
              f"{_num(c.input_tokens):>6} {_num(c.output_tokens):>6}  {_cut(prompt, 60)}")
    print(f"{len(calls)} calls")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
