"""Hailuo (GoAPI index: Hailuo / Generate Video, Director Mode). Request shapes: n8n Hailuo nodes
(HailuoTextToVideo: model t2v-01 | t2v-01-director | t2v-02 with duration 6|10 and resolution 768|1080;
HailuoImageToVideo; HailuoSubjectVideo s2v-01) and piapi.ai/docs/hailuo-api/generate-video (required
fields per model, public prices $0.20 / $0.30). Output: ``video_url``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, fetch_ok, is_url, round_trip

IMG = "https://img.example/face.jpg"


@pytest.mark.parametrize(
    ("task_input", "consume"),
    [
        ({"prompt": "a dog runs", "model": "t2v-01", "expand_prompt": False}, 140),
        ({"prompt": "[Pan left] a city", "model": "t2v-01-director", "duration": 6}, 140),
        ({"prompt": "a dog runs", "model": "t2v-02", "duration": 10, "resolution": 768}, 350),
        ({"image_url": IMG, "model": "i2v-01"}, 140),
        ({"image_url": IMG, "model": "i2v-01-live", "prompt": "she smiles"}, 140),
        ({"image_url": IMG, "model": "s2v-01", "prompt": "he walks"}, 210),
    ],
)
async def test_generate_video(system, task_input: dict[str, Any], consume: int) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "hailuo",
            "task_type": "video_generation",
            "input": task_input,
            "config": {"service_mode": "public"},
        },
    )
    assert is_url(task["output"]["video_url"]) and await fetch_ok(system, task["output"]["video_url"])
    assert task["meta"]["usage"] == {"type": "credits", "frozen": consume, "consume": consume}


@pytest.mark.parametrize(
    ("task_input", "field"),
    [
        ({"model": "t2v-02", "prompt": "x", "duration": 10, "resolution": 1080}, "input.resolution"),
        ({"model": "i2v-01", "prompt": "x"}, "input.image_url"),
        ({"model": "t2v-01", "prompt": "x" * 2001}, "input.prompt"),
        ({"model": "t2v-01", "prompt": "x", "duration": 5}, "input.duration"),
    ],
)
async def test_documented_refusals(system, task_input: dict[str, Any], field: str) -> None:
    key = await customer(system)
    status, body = await system.call(
        "POST",
        "/api/v1/task",
        key,
        json={"model": "hailuo", "task_type": "video_generation", "input": task_input},
    )
    assert status == 400 and body["detail"]["field"] == field
