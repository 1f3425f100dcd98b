"""The compatibility suite runs on the e2e harness: API, scheduler, worker and simulator, each the real
component, on the session's throwaway Redis (fixtures ``system`` and ``system_settings``)."""

from __future__ import annotations

from tests.e2e.conftest import system, system_settings

__all__ = ["system", "system_settings"]
