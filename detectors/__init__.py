"""Detectors: pure functions of a window of records (drift, toxicity, latency)."""
