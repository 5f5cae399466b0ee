"""The shared core: the records, errors, config base, component interfaces and self-metrics
every other package speaks. It imports nothing of ours but itself.
"""
