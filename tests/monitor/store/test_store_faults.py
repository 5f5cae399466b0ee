"""The running daemon notices what happens to its store's files: deleted or replaced under
it, a full filesystem, a file corrupted while it was stopped, a second daemon on the same
file. It refuses (503, or a start that fails before listening) instead of acknowledging
data no one will read again, and says why without telling clients where the file is."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.core.components import CallQuery, WriteBatch
from monitor.core.errors import StoreError
from monitor.store.sqlite import SqliteStore
from tests.harness import Daemon, cli, get, raw_request, write_config
from tests.monitor.store.test_sqlite import call
from tests.monitor.test_daemon import CHAT_NO_CONTENT, span_request


def export(daemon: Daemon) -> tuple[int, str]:
    body = span_request(os.urandom(16), os.urandom(8), attributes=CHAT_NO_CONTENT)
    status, _, answer = raw_request("POST", f"{daemon.http}/v1/traces",
                                    body.SerializeToString(),
                                    {"Content-Type": "application/x-protobuf"})
    return status, answer.decode(errors="replace")


def readiness(daemon: Daemon) -> tuple[int, dict[str, object]]:
    status, body = get(daemon.ops + "/readyz")
    return status, json.loads(body)


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_store_deleted_or_replaced_under_the_daemon_refuses_data_and_readiness(
        daemon: Daemon, fault: str) -> None:
    assert export(daemon)[0] == 200
    files = [daemon.store_path.with_name(daemon.store_path.name + suffix)
             for suffix in ("", "-wal", "-shm")]
    for path in files:
        path.unlink(missing_ok=True)
    if fault == "replaced":  # e.g. a restore from backup copied over the live path
        SqliteStore(daemon.store_path).close()

    status, body = export(daemon)
    ready, problems = readiness(daemon)

    assert status == 503, body
    assert ready == 503
    what = {"deleted": "is gone (No such file or directory)", "replaced": "was replaced"}
    assert problems["problems"] == [
        f"store not writable: the store file {what[fault]}; nothing written now would be "
        "kept: restart driftwatch"]
    assert str(daemon.store_path.parent) not in body + json.dumps(problems)
    assert daemon.alive()


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, as root; skipped where it cannot be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_filesystem_makes_the_daemon_not_ready(
        small_filesystem: Path, tmp_path: Path) -> None:
    home = small_filesystem / "driftwatch"
    home.mkdir()
    config = write_config(home, store={"min_free_bytes": "256KiB"})
    daemon = Daemon(config_path=config, store_path=home / "driftwatch.db").start()
    filler = small_filesystem / "filler"
    try:
        assert readiness(daemon)[0] == 200
        assert export(daemon)[0] == 200
        with filler.open("wb") as out, pytest.raises(OSError, match="No space left"):
            while True:
                out.write(b"\0" * 65536)
                out.flush()

        ready, answer = readiness(daemon)
        assert ready == 503
        [problem] = answer["problems"]  # type: ignore[misc]
        # Either the heartbeat found the WAL full, or it fit and the free space is short.
        assert problem.startswith("store not writable: ")
        assert problem.endswith((
            "cannot write the heartbeat in the store: database or disk is full",
            " bytes free, under store.min_free_bytes (262144)")), problem

        filler.unlink()
        assert readiness(daemon)[0] == 200
    finally:
        daemon.stop()


def corrupted_store(path: Path) -> None:
    """A store of 300 calls whose data pages 10 from the middle of the file on were
    overwritten while it was closed (past every table's root page, however many
    migrations added)."""
    store = SqliteStore(path)
    store.write(WriteBatch(calls=[call(prompt="x" * 2000) for _ in range(300)]))
    store.close()
    page = 8192
    with path.open("r+b") as db:
        db.seek(path.stat().st_size // page // 2 * page)
        db.write(os.urandom(10 * page))


def test_a_store_corrupted_while_stopped_is_refused_before_listening(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    corrupted_store(tmp_path / "driftwatch.db")

    done = cli("run", "--config", str(config), check=False, timeout=120)

    assert done.returncode == 1
    assert "listening" not in done.stdout
    assert f"driftwatch: store error: store {tmp_path / 'driftwatch.db'} is corrupt (" in (
        done.stderr)
    assert "restore it from a backup, or move it aside" in done.stderr


def test_corruption_found_while_running_fails_readiness_from_then_on(tmp_path: Path) -> None:
    corrupted_store(tmp_path / "driftwatch.db")
    store = SqliteStore(tmp_path / "driftwatch.db")  # no check at open: the daemon's is apart
    try:
        store.check_writable()  # the heartbeat's page is intact

        with pytest.raises(StoreError, match="malformed"):
            store.calls(CallQuery())

        with pytest.raises(StoreError, match=r"^the store is corrupt \(.*malformed.*\); "
                                             "restore it from a backup"):
            store.check_writable()
    finally:
        store.close()


def test_a_second_daemon_on_the_same_store_is_refused(daemon: Daemon) -> None:
    done = cli("run", "--config", str(daemon.config_path), check=False, timeout=120)

    assert done.returncode == 1
    assert "listening" not in done.stdout
    lock = f"{daemon.store_path}.lock"
    assert (f"driftwatch: store error: store {daemon.store_path} is in use by another "
            f"driftwatch (pid {daemon.process.pid}, lock {lock}); one daemon per store"  # type: ignore[union-attr]
            in done.stderr)
    assert export(daemon)[0] == 200  # the first one is untouched


def test_the_store_and_the_directories_it_creates_are_owner_only(
        start_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "new" / "nested" / "driftwatch.db"
    daemon = start_daemon(store={"path": str(store)})
    assert export(daemon)[0] == 200

    modes = {path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode)
             for path in (store.parent.parent, store.parent, *store.parent.iterdir())}
    assert modes == {"new": 0o700, "new/nested": 0o700, "new/nested/driftwatch.db": 0o600,
                     "new/nested/driftwatch.db-wal": 0o600,
                     "new/nested/driftwatch.db-shm": 0o600,
                     "new/nested/driftwatch.db.lock": 0o600}
