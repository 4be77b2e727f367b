"""Monitoring: data quality, drift, performance and freshness checks, with alert rules and sinks."""
