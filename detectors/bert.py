"""A BERT sentence-transformers model run with numpy: the vectors of
`SentenceTransformer(directory).encode(texts, normalize_embeddings=True)` without PyTorch.

Why: `import torch` alone costs the daemon about 245 MB of RSS and sentence-transformers
another 190 MB, against a 500 MB target, to run a 6-layer MiniLM whose forward pass is a
few matrix products. numpy (already loaded), `tokenizers` and `safetensors` cost about
40 MB beside the 90 MB of weights.

`read_spec` accepts only directories whose output this module reproduces exactly (to
float32 rounding): modules.json of Transformer + Pooling (mean of tokens only) [+ Normalize],
a config.json of model_type "bert" with absolute positions and exact GELU, float32
weights in model.safetensors, and a tokenizer.json that agrees with tokenizer_config.json
(transformers rebuilds a BERT tokenizer from the latter, so a disagreement would tokenise
differently). Anything else raises `NotSupported`, and the caller uses sentence-transformers.

The batch is packed, not padded: every layer but attention works on each token alone, so
the tokens of all texts are stacked into one (tokens, hidden) matrix, and attention runs
text by text. No row depends on which other texts share its batch, and no work is spent on
padding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: tokens per forward pass: bounds the activations (about 25 KB a token, so ~25 MB, plus
#: 3 MB of attention scores for a 256-piece text) whatever the batch size. Measured on
#: MiniLM, one thread: 512 to 4,096 run at the same speed; peak RSS 183, 198, 227, 278 MB.
_TOKENS_PER_PASS = 1024
_MODULES = (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])


class NotSupported(Exception):
    """This directory holds a model the numpy encoder cannot reproduce exactly; the message
    says which file and value, for the log line that explains the fallback."""


@dataclass(frozen=True, slots=True)
class BertSpec:
    """What the encoder needs of a model directory, read and checked by `read_spec`."""

    directory: Path
    layers: int
    heads: int
    hidden: int
    intermediate: int
    vocab: int
    type_vocab: int
    layer_norm_eps: float
    #: positions the model has (config.json max_position_embeddings)
    positions: int
    #: word pieces kept of a text, specials included (sentence_bert_config.json)
    max_seq_length: int


def read_spec(directory: str | Path) -> BertSpec:
    """The spec of a sentence-transformers BERT directory. Reads the JSON files and the
    safetensors header only (milliseconds), so callers can decide before loading anything.
    :raises NotSupported: anything this module would not reproduce exactly."""
    root = Path(directory)
    if not root.is_dir():
        raise NotSupported(f"{directory} is not a local directory")
    _check_modules(root)
    _check_no_default_prompt(root)
    st_config = _read_json(root / "sentence_bert_config.json")
    spec = _spec_from(root, _read_json(root / "config.json"), st_config)
    _check_pooling(root, spec.hidden)
    _check_tokenizer(root, st_lowercases=bool(st_config.get("do_lower_case", False)))
    _check_weights(root / "model.safetensors", _weight_shapes(spec))
    return spec


def _read_json(path: Path) -> dict[str, Any]:
    value = _read_any_json(path)
    if not isinstance(value, dict):
        raise NotSupported(f"{path}: expected a JSON object")
    return value


def _read_any_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotSupported(f"cannot read {path}: {exc}") from None


def _check_modules(root: Path) -> None:
    """Transformer at the root, then mean Pooling, then optionally Normalize: the output is
    normalised by the caller anyway (encode(normalize_embeddings=True)), so Normalize or not
    gives the same vectors."""
    path = root / "modules.json"
    modules = _read_any_json(path)  # a list
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else ""
             for m in modules] if isinstance(modules, list) else []
    if kinds not in _MODULES:
        raise NotSupported(f"{path}: modules {kinds or modules!r}; only Transformer, Pooling "
                           "and optionally Normalize are supported")
    if not all(str(m["type"]).startswith("sentence_transformers.") for m in modules):
        raise NotSupported(f"{path}: a module outside sentence_transformers")
    if modules[0].get("path", "") != "":
        raise NotSupported(f"{path}: the Transformer lives in {modules[0]['path']!r}, "
                           "not the model directory itself")
    if modules[1].get("path") != "1_Pooling":
        raise NotSupported(f"{path}: Pooling path {modules[1].get('path')!r}, not '1_Pooling'")


def _check_no_default_prompt(root: Path) -> None:
    """encode() prepends a default prompt (e.g. "query: ") when the model names one."""
    path = root / "config_sentence_transformers.json"
    if path.exists() and _read_json(path).get("default_prompt_name") is not None:
        raise NotSupported(f"{path}: a default_prompt_name is set; prompts are not supported")


def _spec_from(root: Path, config: dict[str, Any], st_config: dict[str, Any]) -> BertSpec:
    where = root / "config.json"
    wanted = {"model_type": "bert", "hidden_act": "gelu"}
    for key, value in wanted.items():
        if config.get(key) != value:
            raise NotSupported(f"{where}: {key} is {config.get(key)!r}, only {value!r} is "
                               "supported")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise NotSupported(f"{where}: position_embedding_type "
                           f"{config['position_embedding_type']!r}, only 'absolute'")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise NotSupported(f"{where}: a decoder; only encoders are supported")
    n = {key: _positive_int(config, key, where) for key in (
        "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
        "vocab_size", "type_vocab_size", "max_position_embeddings")}
    eps = config.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, float | int) or isinstance(eps, bool) or eps <= 0:
        raise NotSupported(f"{where}: layer_norm_eps {eps!r} must be a positive number")
    if n["hidden_size"] % n["num_attention_heads"]:
        raise NotSupported(f"{where}: hidden_size {n['hidden_size']} is not a multiple of "
                           f"num_attention_heads {n['num_attention_heads']}")
    return BertSpec(
        directory=root, layers=n["num_hidden_layers"], heads=n["num_attention_heads"],
        hidden=n["hidden_size"], intermediate=n["intermediate_size"], vocab=n["vocab_size"],
        type_vocab=n["type_vocab_size"], layer_norm_eps=float(eps),
        positions=n["max_position_embeddings"],
        max_seq_length=_max_seq_length(root, st_config, n["max_position_embeddings"]))


def _positive_int(config: dict[str, Any], key: str, where: Path) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise NotSupported(f"{where}: {key} is {value!r}, not a positive integer")
    return value


def _max_seq_length(root: Path, st_config: dict[str, Any], positions: int) -> int:
    """sentence_bert_config.json must name max_seq_length: without it sentence-transformers
    takes the tokenizer's model_max_length, a rule this module does not copy. Other keys
    (a task, modalities, prompts) change what runs, so only these are accepted."""
    where = root / "sentence_bert_config.json"
    known = {"max_seq_length", "do_lower_case", "transformer_task"}
    if set(st_config) - known:
        raise NotSupported(f"{where}: settings {sorted(set(st_config) - known)} are not "
                           "supported")
    if st_config.get("transformer_task", "feature-extraction") != "feature-extraction":
        raise NotSupported(f"{where}: transformer_task {st_config['transformer_task']!r}")
    length = st_config.get("max_seq_length")
    if not isinstance(length, int) or isinstance(length, bool) or not 2 <= length <= positions:
        raise NotSupported(f"{where}: max_seq_length {length!r} must be an integer from 2 "
                           f"to the model's {positions} positions")
    return length


def _check_pooling(root: Path, hidden: int) -> None:
    """Mean of the token vectors only, in the legacy `pooling_mode_*` form or the newer
    `pooling_mode` one, and never with prompts left out (no prompts are ever given)."""
    where = root / "1_Pooling" / "config.json"
    config = _read_json(where)
    legacy = {k: v for k, v in config.items() if k.startswith("pooling_mode_")}
    modes = [k for k, v in legacy.items() if v]
    mode = config.get("pooling_mode")
    if mode is None and modes != ["pooling_mode_mean_tokens"]:
        raise NotSupported(f"{where}: pooling {modes or 'unset'}; only mean pooling "
                           "(pooling_mode_mean_tokens alone) is supported")
    if mode is not None and (mode not in ("mean", ["mean"]) or modes
                             not in ([], ["pooling_mode_mean_tokens"])):
        raise NotSupported(f"{where}: pooling_mode {mode!r} {modes}; only 'mean' is supported")
    dimension = config.get("word_embedding_dimension", config.get("embedding_dimension"))
    if dimension != hidden:
        raise NotSupported(f"{where}: embedding dimension {dimension!r}, the model's hidden "
                           f"size is {hidden}")
    known = {"word_embedding_dimension", "embedding_dimension", "pooling_mode",
             "include_prompt", *legacy}
    if set(config) - known:
        raise NotSupported(f"{where}: settings {sorted(set(config) - known)} are not supported")


def _check_tokenizer(root: Path, *, st_lowercases: bool) -> None:
    """tokenizer.json must be what transformers' BertTokenizer builds from
    tokenizer_config.json: a BertNormalizer with the same lowercase, accent and Chinese
    settings, the BERT pre-tokeniser, WordPiece with the BERT defaults and [CLS] text [SEP].
    sentence_bert_config.json's do_lower_case adds a lowercasing step, which changes nothing
    when the normaliser already lowercases."""
    where = root / "tokenizer.json"
    tokenizer = _read_json(where)
    settings = _read_json(root / "tokenizer_config.json")
    if settings.get("tokenizer_class") not in (None, "BertTokenizer", "BertTokenizerFast"):
        raise NotSupported(f"{root / 'tokenizer_config.json'}: tokenizer_class "
                           f"{settings['tokenizer_class']!r}, only BertTokenizer")
    lowercase = settings.get("do_lower_case", True)
    normaliser = {"type": "BertNormalizer", "clean_text": True,
                  "handle_chinese_chars": settings.get("tokenize_chinese_chars", True),
                  "strip_accents": settings.get("strip_accents"), "lowercase": lowercase}
    if tokenizer.get("normalizer") != normaliser:
        raise NotSupported(f"{where}: normalizer {tokenizer.get('normalizer')!r} differs from "
                           f"the one tokenizer_config.json asks for ({normaliser})")
    if st_lowercases and not lowercase:
        raise NotSupported(f"{root / 'sentence_bert_config.json'}: do_lower_case on a "
                           "tokenizer that keeps case")
    if tokenizer.get("pre_tokenizer") != {"type": "BertPreTokenizer"}:
        raise NotSupported(f"{where}: pre_tokenizer {tokenizer.get('pre_tokenizer')!r}")
    model = tokenizer.get("model") or {}
    expected = {"type": "WordPiece", "unk_token": settings.get("unk_token", "[UNK]"),
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}
    if {k: model.get(k) for k in expected} != expected:
        raise NotSupported(f"{where}: model {({k: model.get(k) for k in expected})} is not "
                           f"BERT's {expected}")
    _check_template(where, tokenizer.get("post_processor"),
                    settings.get("cls_token", "[CLS]"), settings.get("sep_token", "[SEP]"))


def _check_template(where: Path, processor: Any, cls: str, sep: str) -> None:
    single = [{"SpecialToken": {"id": cls, "type_id": 0}},
              {"Sequence": {"id": "A", "type_id": 0}},
              {"SpecialToken": {"id": sep, "type_id": 0}}]
    if not isinstance(processor, dict) or processor.get("type") != "TemplateProcessing" \
            or processor.get("single") != single:
        raise NotSupported(f"{where}: post_processor is not {cls} text {sep}")


def _weight_shapes(spec: BertSpec) -> dict[str, tuple[int, ...]]:
    """Every tensor the forward pass reads, by its name in a BertModel checkpoint."""
    h, i = spec.hidden, spec.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (spec.vocab, h),
        "embeddings.position_embeddings.weight": (spec.positions, h),
        "embeddings.token_type_embeddings.weight": (spec.type_vocab, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    for n in range(spec.layers):
        p = f"encoder.layer.{n}."
        for name in ("query", "key", "value"):
            shapes |= {f"{p}attention.self.{name}.weight": (h, h),
                       f"{p}attention.self.{name}.bias": (h,)}
        shapes |= {f"{p}attention.output.dense.weight": (h, h),
                   f"{p}attention.output.dense.bias": (h,),
                   f"{p}attention.output.LayerNorm.weight": (h,),
                   f"{p}attention.output.LayerNorm.bias": (h,),
                   f"{p}intermediate.dense.weight": (i, h), f"{p}intermediate.dense.bias": (i,),
                   f"{p}output.dense.weight": (h, i), f"{p}output.dense.bias": (h,),
                   f"{p}output.LayerNorm.weight": (h,), f"{p}output.LayerNorm.bias": (h,)}
    return shapes


def _check_weights(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Names, shapes and float32 from the header. (transformers would load float16 weights
    as float16, and start a missing tensor from random values.)"""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            found = {k: (tuple(weights.get_slice(k).get_shape()), weights.get_slice(k).get_dtype())
                     for k in weights.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError…
        raise NotSupported(f"cannot read {path}: {exc}") from None
    wrong = {k: found.get(k) for k, shape in shapes.items() if found.get(k) != (shape, "F32")}
    if wrong:
        first = sorted(wrong)[:3]
        raise NotSupported(f"{path}: {len(wrong)} tensors missing or not float32 of the "
                           f"configured shape, e.g. {[(k, wrong[k]) for k in first]}")


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer's weights, transposed to (in, out) and contiguous, with the query,
    key and value projections fused into one (hidden, 3 * hidden) product."""

    qkv: np.ndarray
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


class BertEncoder:
    """Texts in, L2-normalised float32 rows out: the same vectors as sentence-transformers
    (max abs difference under 3e-7 on MiniLM; tests/detectors/test_bert.py).

    Thread-safe: `encode` keeps no state between calls. Its matrix products run on numpy's
    BLAS, so threadpoolctl's limit holds; the tokeniser encodes text by text, which keeps it
    off the Rust thread pool that `encode_batch` would spread over every core."""

    def __init__(self, spec: BertSpec, *, max_seq_length: int | None = None) -> None:
        from tokenizers import Tokenizer

        self.spec = spec
        self.max_seq_length = max_seq_length or spec.max_seq_length
        if not 2 <= self.max_seq_length <= spec.positions:
            raise ValueError(f"max_seq_length must lie in [2, {spec.positions}], got: "
                             f"{self.max_seq_length}")
        tokenizer = Tokenizer.from_file(str(spec.directory / "tokenizer.json"))
        tokenizer.no_padding()  # tokenizer.json may pad to a fixed width (MiniLM's: 128)
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer = tokenizer
        self._load_weights()

    def _load_weights(self) -> None:
        path = self.spec.directory / "model.safetensors"

        def get(name: str) -> np.ndarray:
            return _read_tensor(path, name)

        self._words = get("embeddings.word_embeddings.weight")
        self._positions = get("embeddings.position_embeddings.weight")
        self._types = get("embeddings.token_type_embeddings.weight")
        self._norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self._layers = tuple(_read_layer(get, f"encoder.layer.{n}.")
                             for n in range(self.spec.layers))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), hidden). Texts are truncated to max_seq_length word pieces.
        :raises ValueError: a text the tokeniser refuses (e.g. a lone surrogate)."""
        if not texts:
            return np.zeros((0, self.spec.hidden), dtype=np.float32)
        pieces = [self._tokenize(t) for t in texts]
        rows = [self._forward(chunk) for chunk in _chunks(pieces, _TOKENS_PER_PASS)]
        return _l2_normalise(np.concatenate(rows))

    def _tokenize(self, text: str) -> tuple[list[int], list[int]]:
        try:
            encoding = self._tokenizer.encode(text)
        except TypeError as exc:  # a str the Rust side cannot take (lone surrogates)
            raise ValueError(f"cannot tokenise text: {exc}") from None
        return encoding.ids, encoding.type_ids

    def _forward(self, pieces: Sequence[tuple[list[int], list[int]]]) -> np.ndarray:
        """Mean-pooled last hidden states of texts packed one after another."""
        lengths = np.array([len(ids) for ids, _ in pieces])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ids = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in pieces])
        types = np.concatenate([np.asarray(t, dtype=np.int64) for _, t in pieces])
        positions = np.concatenate([np.arange(n) for n in lengths])
        x = self._words[ids] + self._positions[positions] + self._types[types]
        x = _layer_norm(x, self._norm, self.spec.layer_norm_eps)
        for layer in self._layers:
            x = self._layer(layer, x, starts, lengths)
        pooled: np.ndarray = np.add.reduceat(x, starts, axis=0)
        return pooled / lengths[:, None].astype(np.float32)

    def _layer(self, layer: _Layer, x: np.ndarray, starts: np.ndarray,
               lengths: np.ndarray) -> np.ndarray:
        """Post-LayerNorm BERT: attention, add and norm, GELU feed-forward, add and norm."""
        eps = self.spec.layer_norm_eps
        qkv = x @ layer.qkv
        qkv += layer.qkv_bias
        context = np.empty_like(x)
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            context[start:start + length] = self._attend(qkv[start:start + length])
        attended = context @ layer.out
        attended += layer.out_bias
        attended += x
        x = _layer_norm(attended, layer.norm1, eps)
        hidden = x @ layer.up
        hidden += layer.up_bias
        out = _gelu(hidden) @ layer.down
        out += layer.down_bias
        out += x
        return _layer_norm(out, layer.norm2, eps)

    def _attend(self, qkv: np.ndarray) -> np.ndarray:
        """Scaled dot-product attention of one text over all its own tokens (no mask: the
        text is not padded), heads side by side: (tokens, 3 * hidden) → (tokens, hidden)."""
        n, heads, h = len(qkv), self.spec.heads, self.spec.hidden
        q, k, v = (qkv[:, i * h:(i + 1) * h].reshape(n, heads, h // heads).transpose(1, 0, 2)
                   for i in range(3))
        scores = q @ k.transpose(0, 2, 1)
        scores *= np.float32(1.0 / np.sqrt(h // heads))
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context: np.ndarray = (scores @ v).transpose(1, 0, 2).reshape(n, h)
        return context


def _read_tensor(path: Path, name: str, rows_per_read: int = 4096) -> np.ndarray:
    """One tensor as a float32 array of its own, read `rows_per_read` rows at a time, each
    read under its own safe_open: safetensors maps the whole file, and every page read
    stays in RSS until the file is closed, which held the load's peak at 240 MB beside
    150 MB after. (Opening costs a header parse, well under a millisecond.)"""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as weights:
        shape = tuple(weights.get_slice(name).get_shape())
    tensor = np.empty(shape, dtype=np.float32)
    for start in range(0, shape[0], rows_per_read):
        stop = min(start + rows_per_read, shape[0])  # safetensors refuses slices past the end
        with safe_open(str(path), framework="numpy") as weights:
            tensor[start:stop] = weights.get_slice(name)[start:stop]
    return tensor


def _read_layer(get: Any, p: str) -> _Layer:
    def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(get(f"{p}{name}.weight").T), get(f"{p}{name}.bias")

    parts = [linear(f"attention.self.{n}") for n in ("query", "key", "value")]
    out, up, down = (linear(n) for n in ("attention.output.dense", "intermediate.dense",
                                         "output.dense"))
    return _Layer(
        qkv=np.ascontiguousarray(np.concatenate([w for w, _ in parts], axis=1)),
        qkv_bias=np.concatenate([b for _, b in parts]), out=out[0], out_bias=out[1],
        norm1=(get(f"{p}attention.output.LayerNorm.weight"),
               get(f"{p}attention.output.LayerNorm.bias")),
        up=up[0], up_bias=up[1], down=down[0], down_bias=down[1],
        norm2=(get(f"{p}output.LayerNorm.weight"), get(f"{p}output.LayerNorm.bias")))


def _chunks(pieces: Sequence[tuple[list[int], list[int]]],
            budget: int) -> Iterator[Sequence[tuple[list[int], list[int]]]]:
    """Consecutive runs of texts of at most `budget` tokens (a longer text runs alone)."""
    start, used = 0, 0
    for i, (ids, _) in enumerate(pieces):
        if used and used + len(ids) > budget:
            yield pieces[start:i]
            start, used = i, 0
        used += len(ids)
    yield pieces[start:]


def _layer_norm(x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray],
                eps: float) -> np.ndarray:
    """As torch's: the biased variance of each row, eps inside the square root."""
    centred: np.ndarray = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(np.square(centred), axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(variance + np.float32(eps))
    centred *= weight_bias[0]
    centred += weight_bias[1]
    return centred


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Φ(x) with the error function (BERT's "gelu"; not the tanh
    approximation), in place."""
    from scipy.special import erf

    e = np.multiply(x, np.float32(1.0 / np.sqrt(2.0)))
    erf(e, out=e)
    e += 1.0
    x *= e
    x *= np.float32(0.5)
    return x


def _l2_normalise(rows: np.ndarray) -> np.ndarray:
    """As torch.nn.functional.normalize: divide by the norm, at least 1e-12."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: np.ndarray = (rows / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return normalised
