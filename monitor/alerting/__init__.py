"""Alerts: the rule language, the in-process engine, the notifiers, the shipped default rules
and their export as Prometheus rules.
"""
