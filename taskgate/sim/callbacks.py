"""Completion callbacks of the simulator (like GoAPI's ``webhook_config``).

A submit body may carry ``"callback_url"`` (http/https). When the job ends the simulator POSTs the
job, as ``GET /v1/jobs/{id}`` shows it, to that URL, once. The prompt directive
``[sim callback=lost]`` drops the callback and ``[sim callback=duplicate]`` sends it twice (to test
receivers). ``GET /sim/stats`` counts ``callbacks_sent``, ``callbacks_failed`` and
``callbacks_lost``."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import structlog

from taskgate.sim.directives import PAIR, TAG
from taskgate.sim.state import SimJob, SimState

log = structlog.get_logger(__name__)

CALLBACK_MODES = frozenset({"lost", "duplicate"})
FIRE_MARGIN_S = 0.005  # fire just after the job's end, so that its view reads as ended
TIMEOUT_S = 10.0


def callback_mode(task_input: Any) -> str:
    """``lost``, ``duplicate`` or "" from the ``callback=`` key of the prompt's ``[sim ...]`` tags."""
    prompt = task_input.get("prompt") if isinstance(task_input, dict) else None
    mode = ""
    for tag in TAG.finditer(prompt if isinstance(prompt, str) else ""):
        for key, value in PAIR.findall(tag.group(1)):
            if key.lower() == "callback" and value.lower() in CALLBACK_MODES:
                mode = value.lower()
    return mode


class SimCallbacks:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def schedule(self, state: SimState, job: SimJob, url: str, files_base: str) -> None:
        delay = max(0.0, job.ends_at - state.clock()) + FIRE_MARGIN_S
        asyncio.get_running_loop().call_later(delay, self._fire, state, job, url, files_base)

    def _fire(self, state: SimState, job: SimJob, url: str, files_base: str) -> None:
        mode = callback_mode(job.body.input)
        if mode == "lost":
            self.counters["callbacks_lost"] += 1
            return
        body = job.view(state.clock(), files_base)
        for _ in range(2 if mode == "duplicate" else 1):
            task = asyncio.create_task(self._post(url, body))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        try:
            async with self._session.post(url, json=body) as resp:
                await resp.read()
                self.counters["callbacks_sent" if resp.status < 300 else "callbacks_failed"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counters["callbacks_failed"] += 1
            log.info("sim_callback_failed", job_id=body.get("id"), error=str(exc))

    def stats(self) -> dict[str, int]:
        names = ("callbacks_sent", "callbacks_failed", "callbacks_lost")
        return {name: self.counters[name] for name in names}

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
