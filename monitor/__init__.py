"""driftwatch's core: data types, interfaces, config, store, metrics, ops API, CLI, daemon."""

__version__ = "0.1.0"
