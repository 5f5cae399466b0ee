"""The scheduled work: the scheduler, reference windows, text samples and their embeddings, and
the drift, toxicity and latency jobs that feed detectors/.
"""
