"""Kling (GoAPI index: Kling / Create Task, Lipsync, Motion Brush, Elements, Effects, Virtual Try-On;
legacy Video Extend). Request shapes: n8n Kling nodes (KlingTextToVideo, KlingImageToVideo with
elements, KlingVideoExtend, KlingLipSync, KlingEffects, KlingTryOn). Output read: ``works[].video.resource``
and ``video_url`` (piapi.ai/docs/kling-api/get-task). Price: public Kling prices (not in seed 003)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

IMG = "https://img.example/person.jpg"


def assert_kling_video(output: dict[str, Any]) -> None:
    assert is_url(output["video_url"])
    work = output["works"][0]
    assert is_url(work["video"]["resource"]) and is_url(work["video"]["resource_without_watermark"])
    assert is_url(work["cover"]["resource"])


T2V = {
    "prompt": "a cat surfing",
    "negative_prompt": "",
    "duration": 5,
    "aspect_ratio": "16:9",
    "mode": "std",
    "version": "1.6",
    "cfg_scale": 0.5,
}


@pytest.mark.parametrize(
    ("task_input", "consume"),
    [
        (T2V, 112),
        ({**T2V, "mode": "pro", "duration": 10}, 784),
        (
            {"prompt": "she waves", "image_url": IMG, "image_tail_url": IMG, "duration": 5, "version": "1.5"},
            112,
        ),
        (
            {"prompt": "two friends", "elements": [{"image_url": IMG}, {"image_url": IMG}], "version": "1.6"},
            112,
        ),
        ({"image_url": IMG, "motion_brush": {"mask_url": IMG, "static_masks": [], "dynamic_masks": []}}, 112),
    ],
)
async def test_video_generation(system, task_input: dict[str, Any], consume: int) -> None:
    key = await customer(system)
    task = await round_trip(
        system, key, {"model": "kling", "task_type": "video_generation", "input": task_input}
    )
    assert_kling_video(task["output"])
    assert task["meta"]["usage"] == {"type": "credits", "frozen": consume, "consume": consume}


async def test_extend_and_lip_sync_follow_a_video(system) -> None:
    key = await customer(system)
    video = await round_trip(system, key, {"model": "kling", "task_type": "video_generation", "input": T2V})
    extended = await round_trip(
        system,
        key,
        {"model": "kling", "task_type": "extend_video", "input": {"origin_task_id": video["task_id"]}},
    )
    assert_kling_video(extended["output"])
    synced = await round_trip(
        system,
        key,
        {
            "model": "kling",
            "task_type": "lip_sync",
            "input": {
                "origin_task_id": video["task_id"],
                "tts_text": "Hello!",
                "tts_timbre": "Rock",
                "tts_speed": 1,
                "local_dubbing_url": "",
            },
        },
    )
    assert_kling_video(synced["output"])


async def test_effects_and_try_on(system) -> None:
    key = await customer(system)
    effect = await round_trip(
        system,
        key,
        {"model": "kling", "task_type": "effects", "input": {"image_url": IMG, "effect": "squish"}},
    )
    assert_kling_video(effect["output"])
    try_on = await round_trip(
        system,
        key,
        {
            "model": "kling",
            "task_type": "ai_try_on",
            "input": {"model_input": IMG, "upper_input": "https://img.example/shirt.png", "batch_size": 1},
        },
    )
    assert is_url(try_on["output"]["image_url"]) or try_on["output"]["image_urls"]


async def test_lip_sync_needs_speech(system) -> None:
    key = await customer(system)
    status, body = await system.call(
        "POST",
        "/api/v1/task",
        key,
        json={
            "model": "kling",
            "task_type": "lip_sync",
            "input": {"origin_task_id": "ee6f1989-5de2-4e4a-b860-b059ad57a023"},
        },
    )
    assert status == 400 and body["detail"]["field"] == "input.tts_text"
