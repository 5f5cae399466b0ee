"""The ops server and what it serves: /metrics (self, GenAI and detector metrics), the OTLP
metric push, the JSON API and the report pages.
"""
