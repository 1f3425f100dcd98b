"""WanX (GoAPI index: WanX / Create Task, LoRA, Control Camera). Request shapes: piapi-mcp-server
``generate_video_wan`` (txt2video-1.3b / txt2video-14b / img2video-14b), n8n WanX nodes (lora, keyframe;
public prices $0.12 / $0.28); output read: ``video_url``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

IMG = "https://img.example/still.png"


@pytest.mark.parametrize(
    ("task_type", "task_input", "consume"),
    [
        ("txt2video-1.3b", {"prompt": "waves", "negative_prompt": "blur", "aspect_ratio": "16:9"}, 84),
        ("txt2video-14b", {"prompt": "waves", "aspect_ratio": "9:16"}, 196),
        ("txt2video-14b-lora", {"prompt": "a village", "lora_settings": [{"lora_type": "ghibli"}]}, 196),
        ("img2video-14b", {"prompt": "it moves", "image": IMG}, 196),
        (
            "img2video-14b-lora",
            {"prompt": "it moves", "image": IMG, "lora_settings": [{"lora_type": "ghibli"}]},
            196,
        ),
        ("img2video-14b-keyframe", {"prompt": "morph", "start_image": IMG, "end_image": IMG}, 196),
        (
            "img2video-14b-control-camera",
            {"prompt": "fly in", "image": IMG, "control_camera_settings": [{"type": "zoom_in"}]},
            196,
        ),
    ],
)
async def test_wanx(system, task_type: str, task_input: dict[str, Any], consume: int) -> None:
    key = await customer(system)
    body = {"model": "Qubico/wanx", "task_type": task_type, "input": task_input}
    task = await round_trip(system, key, body)
    assert is_url(task["output"]["video_url"]) and task["meta"]["usage"]["consume"] == consume
