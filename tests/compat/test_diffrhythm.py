"""DiffRhythm (GoAPI index: DiffRhythm / Generate an Audio). Identifiers and fields: mcp-catalog
(``Qubico/diffrhythm`` ``txt2audio-base`` / ``txt2audio-full``: lyrics, style_prompt, style_audio), piapi-cli;
output: ``audio_url``."""

from __future__ import annotations

import pytest

from tests.compat.harness import customer, is_url, round_trip


@pytest.mark.parametrize(("task_type", "consume"), [("txt2audio-base", 14), ("txt2audio-full", 28)])
async def test_diffrhythm(system, task_type: str, consume: int) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/diffrhythm",
            "task_type": task_type,
            "input": {"lyrics": "[00:10.00]Moonlight spills", "style_prompt": "pop, female vocals"},
        },
    )
    assert is_url(task["output"]["audio_url"]) and task["meta"]["usage"]["consume"] == consume
