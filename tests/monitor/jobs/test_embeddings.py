"""The daemon's embedder as configured."""

from __future__ import annotations

from pathlib import Path

from monitor.config import load_config
from monitor.daemon import DETECTORS
from monitor.jobs.embeddings import build_embedder
from monitor.jobs.plugin import details_readers
from monitor.store.history import SqliteHistory
from monitor.store.sqlite import SqliteStore


def test_the_default_reads_128_word_pieces_and_each_setting_keeps_its_vectors_apart(
        tmp_path: Path) -> None:
    SqliteStore(tmp_path / "d.db").close()
    history = SqliteHistory(tmp_path / "d.db", details=details_readers(DETECTORS))

    def cache_id(yaml: str | None) -> str:
        path = None
        if yaml is not None:
            path = tmp_path / "driftwatch.yml"
            path.write_text(yaml)
        return build_embedder(load_config(path, environ={}).embedding, history).cache_id

    try:
        assert cache_id(None) == "all-MiniLM-L6-v2@128"
        assert cache_id("embedding:\n  max_seq_length: 256\n") == "all-MiniLM-L6-v2@256"
        assert cache_id("embedding:\n  max_seq_length: null\n") == "all-MiniLM-L6-v2"
    finally:
        history.close()
