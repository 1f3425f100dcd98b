"""Faceswap (GoAPI index: Multi Faceswap, Image Faceswap, Video Faceswap). Request shapes:
piapi-mcp-server ``image_faceswap`` / ``video_faceswap``, mcp-catalog (multi-face-swap indexes). Outputs:
``image_url`` (image), ``video_url`` (video). Price: seed 003 face swap 7 credits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

FACE, TARGET = "https://img.example/face.jpg", "https://img.example/target.jpg"

CASES: list[tuple[str, str, dict[str, Any], str, int]] = [
    ("Qubico/image-toolkit", "face-swap", {"swap_image": FACE, "target_image": TARGET}, "image_url", 7),
    (
        "Qubico/image-toolkit",
        "multi-face-swap",
        {"swap_image": FACE, "target_image": TARGET, "input_faces_index": "0,1", "source_faces_index": "1,0"},
        "image_url",
        7,
    ),
    (
        "Qubico/video-toolkit",
        "face-swap",
        {"swap_image": FACE, "target_video": "https://v.example/in.mp4"},
        "video_url",
        70,
    ),
]


@pytest.mark.parametrize(("model", "task_type", "task_input", "field", "consume"), CASES)
async def test_faceswap(
    system, model: str, task_type: str, task_input: dict[str, Any], field: str, consume: int
) -> None:
    key = await customer(system)
    task = await round_trip(system, key, {"model": model, "task_type": task_type, "input": task_input})
    assert is_url(task["output"][field])
    assert task["meta"]["usage"]["consume"] == consume
