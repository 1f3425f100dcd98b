"""Trellis (GoAPI index: Trellis / Create Task). Request shape: piapi-mcp-server ``generate_3d_model``
(image-to-3d with ``image``), mcp-catalog (text-to-3d, steps and guidance). Output read by that client:
``no_background_image``, ``combined_video``, ``model_file``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, fetch_ok, is_url, round_trip


@pytest.mark.parametrize(
    ("task_type", "task_input"),
    [
        (
            "image-to-3d",
            {
                "image": "https://img.example/chair.png",
                "ss_sampling_steps": 50,
                "slat_sampling_steps": 50,
                "ss_guidance_strength": 7.5,
                "slat_guidance_strength": 3,
            },
        ),
        ("image-to-3d", {"image": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB"}),
        ("text-to-3d", {"prompt": "a wooden chair", "seed": 0}),
    ],
)
async def test_trellis(system, task_type: str, task_input: dict[str, Any]) -> None:
    key = await customer(system)
    task = await round_trip(
        system, key, {"model": "Qubico/trellis", "task_type": task_type, "input": task_input}
    )
    out = task["output"]
    assert all(is_url(out[f]) for f in ("no_background_image", "combined_video", "model_file"))
    assert await fetch_ok(system, out["model_file"])


async def test_steps_outside_the_documented_range(system) -> None:
    key = await customer(system)
    status, body = await system.call(
        "POST",
        "/api/v1/task",
        key,
        json={
            "model": "Qubico/trellis",
            "task_type": "image-to-3d",
            "input": {"image": "https://img.example/chair.png", "ss_sampling_steps": 60},
        },
    )
    assert status == 400 and body["detail"]["field"] == "input.ss_sampling_steps"
