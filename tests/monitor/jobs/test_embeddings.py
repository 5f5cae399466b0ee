"""The daemon's embedder as configured."""

from __future__ import annotations

from pathlib import Path

from monitor.config import load_config
from monitor.daemon import DETECTORS
from monitor.jobs.embeddings import build_embedder
from monitor.jobs.plugin import details_readers
from monitor.store.history import SqliteHistory
from monitor.store.sqlite import SqliteStore


def test_a_shorter_max_seq_length_keeps_its_vectors_apart_in_the_cache(tmp_path: Path) -> None:
    config = tmp_path / "driftwatch.yml"
    config.write_text("embedding:\n  max_seq_length: 128\n")
    SqliteStore(tmp_path / "d.db").close()
    history = SqliteHistory(tmp_path / "d.db", details=details_readers(DETECTORS))
    try:
        short = build_embedder(load_config(config, environ={}).embedding, history)
        default = build_embedder(load_config(None, environ={}).embedding, history)
    finally:
        history.close()
    assert short.cache_id == "all-MiniLM-L6-v2@128"
    assert default.cache_id == "all-MiniLM-L6-v2"
