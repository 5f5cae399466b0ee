"""Held-out ROC-AUC of the shipped toxicity head beside alt-profanity-check, per dataset.

Rows: the held-out parts of the three training datasets (the split train_toxicity.py makes,
so no training text is scored) and the two domains never trained on (openai_moderation's
completely annotated rows, all of wikipedia_talk_toxicity). Needs the full datasets.

alt-profanity-check runs in its own virtualenv so the project's stays clean:

    python3 -m venv /tmp/apc-venv && /tmp/apc-venv/bin/pip install alt-profanity-check
    HF_HUB_OFFLINE=1 .venv/bin/python bench/toxicity_auc.py \\
        --data /work/shared/datasets --apc-python /tmp/apc-venv/bin/python

Without --apc-python (or $APC_PYTHON) its column reads "skipped". Embeddings are cached
where train_toxicity.py caches them, so after training this only scores.

alt-profanity-check's model was trained on all of davidson_hate_offensive and on Jigsaw's
Wikipedia talk comments, so its numbers on those two rows are largely in-sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors._stats import roc_auc
from detectors.embedder import LocalEmbedder
from detectors.toxicity import DEFAULT_HEAD, ToxicityHead
from tools.train_toxicity import (
    OTHER_DOMAINS,
    TRAINING,
    Row,
    embed_cached,
    split_datasets,
)

_APC_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from profanity_check import predict_prob
texts = json.load(sys.stdin)
json.dump([float(p) for p in predict_prob(texts)], sys.stdout)
"""


_APC_SEEN = {"davidson_hate_offensive": "*", "wikipedia_talk_toxicity": "*"}


def profanity_check_scores(python: str, texts: Sequence[str]) -> np.ndarray:
    """alt-profanity-check's probabilities, computed by `python` (its own interpreter)."""
    done = subprocess.run([python, "-c", _APC_SCRIPT], input=json.dumps(list(texts)),
                          capture_output=True, text=True, check=True)
    return np.asarray(json.loads(done.stdout), dtype=np.float64)


def _apc_python(given: str | None) -> str | None:
    if not given:
        print("alt-profanity-check skipped: pass --apc-python or set APC_PYTHON to an "
              "interpreter where `pip install alt-profanity-check` was run", file=sys.stderr)
        return None
    probe = subprocess.run([given, "-c", "import profanity_check"], capture_output=True)
    if probe.returncode != 0:
        print(f"alt-profanity-check skipped: {given} cannot import profanity_check "
              "(run `<venv>/bin/pip install alt-profanity-check`)", file=sys.stderr)
        return None
    return given


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets"))
    parser.add_argument("--corpus", type=Path, default=Path("corpora/toxicity.jsonl"))
    parser.add_argument("--head", type=Path, default=DEFAULT_HEAD)
    parser.add_argument("--apc-python", default=os.environ.get("APC_PYTHON"))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "XDG_CACHE_HOME", Path.home() / ".cache")) / "driftwatch" / "toxicity")
    args = parser.parse_args(argv)
    head = ToxicityHead.load(args.head)
    embedder = LocalEmbedder(head.embedding_model)
    apc = _apc_python(args.apc_python)
    splits = split_datasets(args.data, args.corpus)
    print("| dataset | n | positives | ours AUC | alt-profanity-check AUC |")
    print("|---|---:|---:|---:|---:|")
    for dataset in TRAINING + OTHER_DOMAINS:
        rows: Sequence[Row] = splits[dataset].test
        texts = [r.text for r in rows]
        toxic = np.array([r.toxic == 1 for r in rows])
        ours = roc_auc(head.probabilities(embed_cached(embedder, texts, args.cache)), toxic)
        theirs = (f"{roc_auc(profanity_check_scores(apc, texts), toxic):.3f}" if apc
                  else "skipped")
        role = "held-out part" if dataset in TRAINING else "not trained on"
        print(f"| {dataset} ({role}) | {len(rows)} | {int(toxic.sum())} | {ours:.3f} | "
              f"{theirs}{_APC_SEEN.get(dataset, '')} |")
    if apc:
        print("\n* alt-profanity-check was trained on these rows' sources (all of Davidson's "
              "tweets; Jigsaw's Wikipedia talk comments), so its AUC there is largely "
              "in-sample; ours is held out.")


if __name__ == "__main__":
    main()
