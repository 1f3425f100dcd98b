"""AI Hug (GoAPI index: AI Hug). Identifiers: piapi-cli catalog (``Qubico/hug-video`` /
``image_to_video``, docs piapi.ai/docs/ai-hug-api/create-task); input ``image_url``; output ``video_url``."""

from __future__ import annotations

from tests.compat.harness import customer, fetch_ok, is_url, round_trip


async def test_hug_video(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/hug-video",
            "task_type": "image_to_video",
            "input": {"image_url": "https://img.example/two-people.jpg"},
        },
    )
    assert is_url(task["output"]["video_url"]) and await fetch_ok(system, task["output"]["video_url"])
    assert task["meta"]["usage"]["type"] == "credits" and task["meta"]["usage"]["consume"] == 140
