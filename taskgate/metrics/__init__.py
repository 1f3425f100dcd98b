"""Operator metrics: cluster state read from Redis at scrape time and per-process counters."""
