"""Skyreels (GoAPI index: Skyreels / Create Task). Request shape: piapi-mcp-server
``generate_video_skyreels`` (prompt, negative_prompt, aspect_ratio, image); output read: ``video_url``."""

from __future__ import annotations

from tests.compat.harness import customer, is_url, round_trip


async def test_img2video(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/skyreels",
            "task_type": "img2video",
            "input": {
                "prompt": "she turns",
                "negative_prompt": "chaos",
                "aspect_ratio": "9:16",
                "image": "https://img.example/portrait.png",
                "guidance_scale": 3.5,
            },
        },
    )
    assert is_url(task["output"]["video_url"]) and task["meta"]["usage"]["consume"] == 140
