"""Ace Step (GoAPI index: Ace Step / Text to Audio, Audio to Audio, Audio Edit, Audio Extend). Fields:
mcp-catalog (``Qubico/ace-step``); output: ``audio_url``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

SONG = "https://a.example/song.mp3"
CASES: list[tuple[str, dict[str, Any]]] = [
    ("txt2audio", {"style_prompt": "upbeat pop", "lyrics": "[verse]\nhello", "duration": 30}),
    ("audio2audio", {"style_audio": SONG, "style_prompt": "jazz", "lyrics": "[verse]\nhello"}),
    (
        "edit",
        {
            "audio": SONG,
            "style_prompt": "pop",
            "lyrics": "old",
            "edit_lyrics": "new",
            "edit_style_prompt": "rock",
        },
    ),
    (
        "extend",
        {"audio": SONG, "style_prompt": "pop", "left_extend_duration": 0, "right_extend_duration": 10},
    ),
]


@pytest.mark.parametrize(("task_type", "task_input"), CASES)
async def test_ace_step(system, task_type: str, task_input: dict[str, Any]) -> None:
    key = await customer(system)
    task = await round_trip(
        system, key, {"model": "Qubico/ace-step", "task_type": task_type, "input": task_input}
    )
    assert is_url(task["output"]["audio_url"]) and task["meta"]["usage"]["consume"] == 14
