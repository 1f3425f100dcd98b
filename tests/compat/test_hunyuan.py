"""Hunyuan Video (GoAPI index: Hunyuan Video / Generate Video). Request shape: piapi-mcp-server
``generate_video_hunyuan`` (prompt, negative_prompt, aspect_ratio, image for the img2video types);
output read: ``video_url``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

BASE = {"prompt": "a red panda", "negative_prompt": "chaos, bad video", "aspect_ratio": "16:9"}


@pytest.mark.parametrize(
    ("task_type", "extra", "consume"),
    [
        ("txt2video", {}, 63),
        ("fast-txt2video", {}, 21),
        ("txt2video-lora", {"lora_settings": [{"lora_type": "steamboat-willie"}]}, 63),
        ("img2video-concat", {"image": "https://img.example/panda.png"}, 63),
        ("img2video-replace", {"image": "https://img.example/panda.png"}, 63),
    ],
)
async def test_hunyuan(system, task_type: str, extra: dict[str, Any], consume: int) -> None:
    key = await customer(system)
    task = await round_trip(
        system, key, {"model": "Qubico/hunyuan", "task_type": task_type, "input": {**BASE, **extra}}
    )
    assert is_url(task["output"]["video_url"]) and task["meta"]["usage"]["consume"] == consume
