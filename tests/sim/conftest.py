from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sim.harness import Sim, running_sim


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with running_sim() as running:
        yield running
