"""Customers: plan fields, settings, webhook endpoints and API keys."""
