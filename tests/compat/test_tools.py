"""Tools (GoAPI index: Remove Background, Segment With Prompt, Image Upscale, Video Upscale). Request
shapes: piapi-mcp-server ``image_rmbg``, ``image_segment``, ``image_upscale``, ``video_upscale``. Outputs
read: ``image_url`` / ``image_urls``; ``video_url``. Prices: seed 003 "Image Editing API Credit Pricing"
(video upscale: placeholder). File Upload is not served: see README "GoAPI compatibility"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

IMG = "https://img.example/photo.png"


@pytest.mark.parametrize(
    ("model", "task_type", "task_input", "field", "consume"),
    [
        ("Qubico/image-toolkit", "background-remove", {"image": IMG}, "image_url", 2),
        (
            "Qubico/image-toolkit",
            "segment",
            {"image": IMG, "prompt": "the cat", "negative_prompt": "", "segment_factor": -15},
            "image_url",
            14,
        ),
        (
            "Qubico/image-toolkit",
            "upscale",
            {"image": IMG, "scale": 4, "face_enhance": False},
            "image_url",
            14,
        ),
        ("Qubico/video-toolkit", "upscale", {"video": "https://v.example/in.mp4"}, "video_url", 35),
    ],
)
async def test_tools(
    system, model: str, task_type: str, task_input: dict[str, Any], field: str, consume: int
) -> None:
    key = await customer(system)
    task = await round_trip(system, key, {"model": model, "task_type": task_type, "input": task_input})
    assert is_url(task["output"][field]) and task["meta"]["usage"]["consume"] == consume
