"""Framepack (GoAPI index: Framepack / Create Task). Fields: mcp-catalog ``Qubico/framepack::img2video``
(prompt, negative_prompt, start_image, end_image, duration); output: ``video_url``."""

from __future__ import annotations

from tests.compat.harness import customer, is_url, round_trip


async def test_img2video(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/framepack",
            "task_type": "img2video",
            "input": {
                "prompt": "the flower opens",
                "start_image": "https://img.example/bud.png",
                "end_image": "https://img.example/bloom.png",
                "duration": 5,
            },
        },
    )
    assert is_url(task["output"]["video_url"]) and task["meta"]["usage"]["consume"] == 140
