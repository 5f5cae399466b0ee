"""An extraction worker process: `python -m collectors.worker`, started by `ExtractionPool`.

It reads requests from stdin and writes answers to stdout, each one length-framed pickle
(multiprocessing's Connection framing): a request is (signal, body, media, max_chars,
variant_key); an
answer is ("ok", Extracted), ("bad", message) for a body that does not decode, or
("error", description) for anything else. It imports only the extraction modules, so it
starts in a fraction of a second and stays small, and it exits when its parent closes the
pipe (or dies); SIGINT and SIGTERM are the daemon's to act on, not its workers'.
"""

from __future__ import annotations

import signal

# First, before the imports below take their tenth of a second: Ctrl-C reaches the whole
# process group, and systemd's SIGTERM the whole cgroup, but the daemon alone decides when
# workers stop (it closes their pipe; so does its death).
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

import os  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402

from collectors.extract import extract_body  # noqa: E402
from monitor.core.errors import BadRequest  # noqa: E402


def serve(requests: Connection, answers: Connection) -> None:
    while True:
        try:
            request = requests.recv_bytes()
        except (EOFError, OSError):
            return
        signal_name, body, media, max_chars, variant_key = pickle.loads(request)
        try:
            answer: tuple[str, object] = (
                "ok", extract_body(signal_name, body, media, max_chars, variant_key))
        except BadRequest as exc:
            answer = ("bad", str(exc))
        except Exception as exc:  # a bug in extraction: answered, never fatal to the worker
            answer = ("error", f"{type(exc).__name__}: {exc}")
        answers.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


def main() -> None:
    stdin, stdout = os.dup(sys.stdin.fileno()), os.dup(sys.stdout.fileno())
    # Nothing else may write to the answer pipe: stray prints go to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(Connection(stdin, writable=False), Connection(stdout, readable=False))


if __name__ == "__main__":
    main()
