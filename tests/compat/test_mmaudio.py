"""MMAudio (GoAPI index: Mmaudio / Generate Audio). Request shape: piapi-mcp-server
``generate_music_for_video`` (prompt, negative_prompt, video); output read: ``audio_url``."""

from __future__ import annotations

from tests.compat.harness import customer, is_url, round_trip


async def test_video2audio(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/mmaudio",
            "task_type": "video2audio",
            "input": {
                "prompt": "rain on a tin roof",
                "negative_prompt": "chaos, bad music",
                "video": "https://v.example/clip.mp4",
            },
        },
    )
    assert is_url(task["output"]["audio_url"]) and task["meta"]["usage"]["consume"] == 35
