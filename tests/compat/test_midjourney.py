"""Midjourney (GoAPI index: Midjourney / Create Task: Imagine ... Pan). Request shape: piapi-mcp-server
``midjourney_imagine`` (prompt, aspect_ratio, process_mode fast); output read: ``image_url`` /
``image_urls``; price: seed 003 (V6 fast imagine 14 quotas, upscale U1-U4 2)."""

from __future__ import annotations

from tests.compat.harness import customer, is_url, round_trip


async def test_imagine_then_upscale(system) -> None:
    key = await customer(system)
    imagine = await round_trip(system, key, {
        "model": "midjourney", "task_type": "imagine",
        "input": {"prompt": "a lighthouse at dawn", "aspect_ratio": "16:9", "process_mode": "fast"}})
    assert is_url(imagine["output"]["image_url"]) and len(imagine["output"]["image_urls"]) == 4
    assert imagine["meta"]["usage"] == {"type": "mj_quota", "frozen": 14, "consume": 14}
    upscale = await round_trip(system, key, {
        "model": "midjourney", "task_type": "upscale",
        "input": {"origin_task_id": imagine["task_id"], "index": "1"}})
    assert is_url(upscale["output"]["image_url"])
    assert upscale["meta"]["usage"]["consume"] == 2
