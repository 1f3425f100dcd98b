"""Webhooks (DESIGN.md §7): signed, ordered, retried deliveries with an SSRF guard."""
