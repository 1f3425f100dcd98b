"""Upstream accounts: the registry, selection index and health (rules S2, S6, S8, S9)."""
