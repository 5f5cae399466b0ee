"""The scheduled jobs' config sections: embedding, references, and each detector's windows,
samples and thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from monitor.core.config import (
    Duration,
    Section,
)


class JobsConfig(Section):
    retention_interval: Duration = 3600.0
    # the most segments (services and their models) the detectors watch, busiest first
    max_segments: int = Field(default=500, ge=1)
    #: also watch each service's versions as segments of their own (drift, toxicity and
    #: latency): by `service.version`, by the `ingest.variant_attribute`, or both; [] = off
    split_by: tuple[Literal["service_version", "variant"], ...] = ()
    #: per watched service and key, the newest versions split off; older ones fold into
    #: the service's segment
    max_versions_per_service: int = Field(default=3, ge=1, le=20)


class RemoteEmbeddingConfig(Section):
    """An OpenAI-compatible /v1/embeddings server (e.g. text-embeddings-inference)."""

    url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key: str | None = None
    timeout: Duration = 30.0


class EmbeddingConfig(Section):
    model: str = "all-MiniLM-L6-v2"  # a sentence-transformers name or local directory
    remote: RemoteEmbeddingConfig | None = None  # used instead of `model` when set
    batch_size: int = Field(default=64, ge=1, le=4096)
    #: word pieces a local model reads of each text; None (`null`): the model's own (256 for
    #: MiniLM). 128, MiniLM's training length, embeds long texts ~1.6-1.8x faster with drift
    #: power and toxicity AUC within noise (bench/truncation.py); vectors cached per setting
    max_seq_length: int | None = Field(default=128, ge=2, le=8192)
    threads: int = Field(default=1, ge=1, le=256)  # CPU threads the models and BLAS may use
    cache_items: int = Field(default=50_000, ge=0)  # in-memory LRU before the stored cache
    #: embed sampled texts as their calls arrive (the `embed_ahead` job), not in the jobs
    ahead: bool = True
    ahead_interval: Duration = 15.0
    ahead_queue: int = Field(default=4_000, ge=10)  # texts waiting per segment, at most


class ReferenceConfig(Section):
    """What a window is compared with.

    `baseline`: a pinned window (`driftwatch baseline set`), or else the first full window
    after the segment appeared. `trailing`: the same window `offset` earlier (1d, 7d).
    """

    mode: Literal["baseline", "trailing"] = "baseline"
    offset: Duration = 86400.0


class SegmentReference(Section):
    service: str = Field(min_length=1)
    model: str | None = None
    reference: ReferenceConfig


class WindowedConfig(Section):
    enabled: bool = True
    window: Duration = 3600.0  # the current window: calls that started in the last `window`
    reference: ReferenceConfig = ReferenceConfig()
    segments: tuple[SegmentReference, ...] = ()  # per-segment reference overrides
    min_samples: int = Field(default=50, ge=10)
    sample_cap: int = Field(default=2_000, ge=10)  # per segment, direction and window
    alpha: float = Field(default=0.01, gt=0, lt=1)

    @model_validator(mode="after")
    def _cap_above_minimum(self) -> WindowedConfig:
        if self.sample_cap < self.min_samples:
            raise ValueError(f"sample_cap: must be at least min_samples ({self.min_samples}), "
                             f"got: {self.sample_cap}")
        return self

    def reference_for(self, service: str, model: str | None) -> ReferenceConfig:
        """The segment's own reference, else its service's, else the default."""
        for wanted in (model, None):
            for seg in self.segments:
                if seg.service == service and seg.model == wanted:
                    return seg.reference
        return self.reference


class HysteresisConfig(Section):
    k: int = Field(default=2, ge=1)
    m: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _k_within_m(self) -> HysteresisConfig:
        if self.k > self.m:
            raise ValueError(f"k: must not exceed m ({self.m}), got: {self.k}")
        return self


class DriftConfig(WindowedConfig):
    interval: Duration = 900.0
    # 1,000 calls a window: the size bench/drift.py's power table is measured at, and half the
    # texts embedded per segment-hour (docs/performance.md#detection-capacity)
    sample_cap: int = Field(default=1_000, ge=10)
    permutations: int = Field(default=1_000, ge=99, le=100_000)
    min_auc: float = Field(default=0.55, ge=0.5, le=1)  # effect gate of the MMD test
    min_novel_excess: float = Field(default=0.02, ge=0, le=1)  # effect gate of novelty
    min_scan_effect: float = Field(default=0.05, ge=0, le=1)  # effect gate of the scan
    hysteresis: HysteresisConfig = HysteresisConfig()
    self_check_interval: Duration = 6 * 3600.0
    explain: bool = True


class ToxicityConfig(WindowedConfig):
    interval: Duration = 300.0
    # an hour, as drift's: the segment's shared sample holds about `sample_cap` calls an hour,
    # so a shorter window would read a fraction of it and see less (docs/detectors.md)
    window: Duration = 3600.0
    min_samples: int = Field(default=30, ge=10)
    sample_cap: int = Field(default=1_000, ge=10)
    model: str | None = None  # a Hugging Face text-classification model; None = shipped head
    toxic_labels: tuple[str, ...] = ()
    threshold: float | None = Field(default=None, gt=0, le=1)  # None = the scorer's own
    min_increase: float = Field(default=0.02, ge=0, le=1)
    top_examples: int = Field(default=3, ge=0, le=50)


class SloConfig(Section):
    availability: float = Field(default=0.99, gt=0, lt=1)  # share of calls without error
    latency_threshold: Duration = 10.0  # a call slower than this spends the latency budget
    latency_objective: float = Field(default=0.95, gt=0, lt=1)


class LatencyConfig(WindowedConfig):
    interval: Duration = 60.0
    window: Duration = 900.0
    min_samples: int = Field(default=30, ge=10)
    sample_cap: int = Field(default=20_000, ge=10)
    min_ratio: float = Field(default=1.2, ge=1)  # p95 must grow at least this much
    slo: SloConfig = SloConfig()
