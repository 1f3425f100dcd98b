"""Flux (GoAPI index: Flux; Flux with LoRA and Controlnet; Flux API with Redux Variation, Fill, Inpaint
and Outpaint). Request shapes: piapi-mcp-server src/index.ts (generate_image, modify_image, derive_image,
generate_image_controlnet), n8n FluxTextToImage (its portrait 4:5 preset is 864x1080). Output read by
those clients: ``image_url`` or ``image_urls``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, fetch_ok, is_url, round_trip

IMG = "https://img.example/in.png"
DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQ"
    "AAAABJRU5ErkJggg=="
)
NEG = "chaos, bad photo, low quality, low resolution"

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("Qubico/flux1-schnell", "txt2img", {"prompt": "a fox", "width": 864, "height": 1080, "steps": 4}, 1),
    ("Qubico/flux1-dev", "img2img", {"prompt": "a fox", "image": DATA_URL, "steps": 25}, 11),
    (
        "Qubico/flux1-dev-advanced",
        "txt2img-lora",
        {
            "prompt": "a fox",
            "negative_prompt": NEG,
            "width": 1024,
            "height": 1024,
            "steps": 25,
            "lora_settings": [{"lora_type": "mystic-realism"}],
        },
        14,
    ),
    (
        "Qubico/flux1-dev-advanced",
        "img2img-lora",
        {"prompt": "a fox", "image": IMG, "steps": 25, "lora_settings": [{"lora_type": "mjv6"}]},
        14,
    ),
    (
        "Qubico/flux1-dev-advanced",
        "fill-inpaint",
        {"prompt": "a hat", "negative_prompt": NEG, "image": IMG, "steps": 25},
        14,
    ),
    (
        "Qubico/flux1-dev-advanced",
        "fill-outpaint",
        {
            "prompt": "a meadow",
            "image": IMG,
            "steps": 25,
            "custom_settings": [
                {
                    "setting_type": "outpaint",
                    "outpaint_left": 64,
                    "outpaint_right": 64,
                    "outpaint_top": 0,
                    "outpaint_bottom": 0,
                }
            ],
        },
        14,
    ),
    (
        "Qubico/flux1-dev-advanced",
        "redux-variation",
        {"prompt": "same, at night", "image": IMG, "width": 1024, "height": 1024, "steps": 25},
        14,
    ),
    (
        "Qubico/flux1-dev-advanced",
        "controlnet-lora",
        {
            "prompt": "a robot",
            "width": 1024,
            "height": 1024,
            "steps": 25,
            "lora_settings": [],
            "control_net_settings": [{"control_type": "depth", "control_image": IMG}],
        },
        14,
    ),
]


@pytest.mark.parametrize(("model", "task_type", "task_input", "consume"), CASES)
async def test_flux_round_trip(
    system, model: str, task_type: str, task_input: dict[str, Any], consume: int
) -> None:
    key = await customer(system)
    body = {"model": model, "task_type": task_type, "input": task_input, "config": None}
    task = await round_trip(system, key, body)
    urls = [task["output"]["image_url"], *task["output"]["image_urls"]]
    assert all(is_url(u) for u in urls)
    assert await fetch_ok(system, task["output"]["image_url"])
    assert task["meta"]["usage"] == {"type": "credits", "frozen": consume, "consume": consume}
    assert task["input"]["prompt"] == task_input["prompt"]  # fields pass through to the upstream


async def test_flux_size_limit_is_the_documented_pixel_count(system) -> None:
    key = await customer(system)
    body = {
        "model": "Qubico/flux1-dev",
        "task_type": "txt2img",
        "input": {"prompt": "x", "width": 1280, "height": 1280},
    }
    status, refused = await system.call("POST", "/api/v1/task", key, json=body)
    assert status == 400 and refused["detail"]["field"] == "input.width" and "1048576" in refused["message"]
