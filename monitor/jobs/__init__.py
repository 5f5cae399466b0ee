"""The scheduled work: the scheduler, reference windows, text samples and their embeddings,
and the detectors that feed detectors/, one package each (drift, toxicity, latency), each
behind the one interface in `plugin`.
"""
