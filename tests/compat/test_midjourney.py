"""Midjourney (GoAPI index: Midjourney / Create Task: Imagine ... Pan). Request shape: piapi-mcp-server
``midjourney_imagine`` (prompt, aspect_ratio, process_mode fast); output read: ``image_url`` /
``image_urls``; price: seed 003 (V6 fast imagine 14 quotas, upscale U1-U4 2)."""

from __future__ import annotations

from typing import Any

from tests.compat.harness import customer, is_url, round_trip

IMG = "https://img.example/a.png"


async def test_imagine_then_upscale(system) -> None:
    key = await customer(system)
    imagine = await round_trip(
        system,
        key,
        {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": "a lighthouse at dawn", "aspect_ratio": "16:9", "process_mode": "fast"},
        },
    )
    assert is_url(imagine["output"]["image_url"]) and len(imagine["output"]["image_urls"]) == 4
    assert imagine["meta"]["usage"] == {"type": "mj_quota", "frozen": 14, "consume": 14}
    upscale = await round_trip(
        system,
        key,
        {
            "model": "midjourney",
            "task_type": "upscale",
            "input": {"origin_task_id": imagine["task_id"], "index": "1"},
        },
    )
    assert is_url(upscale["output"]["image_url"])
    assert upscale["meta"]["usage"]["consume"] == 2


async def test_every_task_type_after_an_imagine(system) -> None:
    """Inpaint, outpaint and pan act on an upscaled image (GoAPI: their origin is an upscale task).
    The documented create-task bodies of the other task types (piapi.ai/docs/midjourney-api/*), priced
    by seed 003: type 1 (variation, reroll, inpaint, outpaint, pan) 14 at V6 fast, type 2 (describe) 2,
    type 3 (seed) 1, blend 14."""
    key = await customer(system)
    imagine = await round_trip(
        system,
        key,
        {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": "a lighthouse", "process_mode": "fast"},
        },
    )
    origin = imagine["task_id"]
    upscaled = (
        await round_trip(
            system,
            key,
            {
                "model": "midjourney",
                "task_type": "upscale",
                "input": {"origin_task_id": origin, "index": "1"},
            },
        )
    )["task_id"]
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("variation", {"origin_task_id": origin, "index": "2", "prompt": "", "skip_prompt_check": False}, 14),
        ("reroll", {"origin_task_id": origin, "prompt": "", "aspect_ratio": "1:1"}, 14),
        ("inpaint", {"origin_task_id": upscaled, "mask": "UklGRg==", "prompt": "a hat"}, 14),
        ("outpaint", {"origin_task_id": upscaled, "zoom_ratio": "1.5", "prompt": ""}, 14),
        ("pan", {"origin_task_id": upscaled, "direction": "up", "prompt": ""}, 14),
        ("seed", {"origin_task_id": origin}, 1),
        ("describe", {"image_url": IMG, "bot_id": 0, "process_mode": "fast"}, 2),
        ("blend", {"image_urls": [IMG, IMG], "dimension": "square", "bot_id": 0, "process_mode": "fast"}, 14),
    ]
    for task_type, task_input, consume in cases:
        body = {"model": "midjourney", "task_type": task_type, "input": task_input}
        task = await round_trip(system, key, body)
        assert task["output"]["image_url"] or task["output"]["image_urls"], task_type
        assert task["meta"]["usage"]["consume"] == consume, task_type
