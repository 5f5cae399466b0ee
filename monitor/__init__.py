"""The daemon, by concern, in the order a call flows through it:

- `core/`: the shared vocabulary (records, errors, config base, interfaces, self-metrics);
  every package may import it and it imports nothing of ours.
- `store/`: the SQLite store, its history of results, the writer, alert state.
- `jobs/`: the scheduler, references, text samples and embeddings, the detector jobs.
- `alerting/`: rules, the engine, notifiers, default rules and their Prometheus export.
- `ops/`: the ops server, /metrics, the OTLP metric push, report pages.
- `cli/`: the driftwatch command, its ops client, demo and replay.
- `config.py`: the whole config, composed of the sections beside each component.
- `daemon.py`: the one composition root that builds and wires the rest.
"""

__version__ = "0.1.0"
