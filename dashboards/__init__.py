"""Grafana dashboards: the code that builds them and the JSON it writes."""
