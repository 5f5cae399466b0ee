"""Version comparison: `driftwatch compare` (two models, releases or variants of a service,
measure by measure) and the `canary` detector, which compares each new `service.version`
with the one before it as its calls arrive and pages on a significant regression.

The statistics are `detectors.compare`; `comparer` reads the two sides from the store (capped
samples), scores and embeds their completions with the models the toxicity and drift jobs
use, and keeps every comparison in the store for its report page (`/reports/compare/{id}`).
"""
