"""Upstream provider adapters (DESIGN.md §9): ``build_provider(name, session, timeout_s)``."""

from __future__ import annotations

import aiohttp

from taskgate.providers.base import Provider
from taskgate.providers.goapi import GoapiProvider
from taskgate.providers.sim import SimProvider

PROVIDERS: dict[str, type[SimProvider] | type[GoapiProvider]] = {"sim": SimProvider, "goapi": GoapiProvider}


def build_provider(name: str, session: aiohttp.ClientSession, timeout_s: float) -> Provider:
    """The adapter for ``name`` ("sim" or "goapi"), sharing ``session``; unknown names -> ValueError."""
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    return factory(session, timeout_s)


__all__ = ["PROVIDERS", "build_provider"]
