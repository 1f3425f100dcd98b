"""Outputs from a real GoAPI-compatible upstream reach the customer unchanged: an account of provider
``goapi`` (taskgate fronting GoAPI) answers with each family's documented ``output`` and the taskgate task
carries exactly that object (plus ``progress``), field for field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from taskgate.pool.registry import AccountSpec
from taskgate.settings import Settings
from tests.compat.harness import WALLETS, round_trip
from tests.providers.fake_goapi import FakeGoapi, envelope

KLING = {
    "type": "m2v_txt2video_hq",
    "status": 99,
    "works": [
        {
            "status": 99,
            "type": "m2v_txt2video_hq",
            "cover": {
                "resource": "https://x.example/c.png",
                "resource_without_watermark": "",
                "height": 1440,
                "width": 1440,
                "duration": 0,
            },
            "video": {
                "resource": "https://x.example/v.mp4",
                "resource_without_watermark": "https://x.example/w.mp4",
                "height": 1440,
                "width": 1440,
                "duration": 5100,
            },
        }
    ],
}
LUMA = {
    "video_raw": {"url": "https://x.example/v.mp4", "width": 1360, "height": 752},
    "last_frame": {"url": "https://x.example/l.jpg", "width": 1360, "height": 752},
}
SUNO = {"clips": {"c1": {"audio_url": "https://x.example/a.mp3", "image_url": "https://x.example/i.png"}}}
TRELLIS = {
    "no_background_image": "https://x.example/n.png",
    "combined_video": "https://x.example/c.mp4",
    "model_file": "https://x.example/m.glb",
}


@pytest.fixture
def system_settings(system_settings: Settings, tmp_path: Path) -> Settings:
    """The fake upstream ends its jobs at once: expected durations of a tenth of a second, so adaptive
    polling (which would first poll a real Kling job after minutes) asks right away."""
    durations = tmp_path / "durations.toml"
    durations.write_text("[default]\nrelax = 0.1\nfast = 0.1\nturbo = 0.1\n")
    return system_settings.model_copy(update={"poll_durations_path": durations})


@pytest.fixture
async def goapi() -> AsyncIterator[FakeGoapi]:
    fake = FakeGoapi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.mark.parametrize(
    ("body", "output"),
    [
        ({"model": "kling", "task_type": "video_generation", "input": {"prompt": "a cat"}}, KLING),
        ({"model": "luma", "task_type": "video_generation", "input": {"prompt": "a pond"}}, LUMA),
        ({"model": "music-s", "task_type": "generate_music", "input": {"prompt": "lofi"}}, SUNO),
        (
            {
                "model": "Qubico/trellis",
                "task_type": "image-to-3d",
                "input": {"image": "https://x.example/i.png"},
            },
            TRELLIS,
        ),
    ],
)
async def test_upstream_output_is_passed_through(
    system, goapi: FakeGoapi, body: dict[str, Any], output: dict[str, Any]
) -> None:
    goapi.on("POST", "/api/v1/task", 200, envelope({"task_id": "up-1"}))
    goapi.on(
        "GET",
        "/api/v1/task/up-1",
        200,
        envelope({"task_id": "up-1", "status": "completed", "output": output, "error": {"code": 0}}),
    )
    goapi.on("GET", "/api/v1/account", 200, envelope({}))
    _, key = await system.user("developer", wallets=dict(WALLETS))
    await system.services.accounts.add(
        AccountSpec(
            owner="shared", provider="goapi", base_url=goapi.base_url, api_key=SecretStr("gk-1"), capacity=2
        )
    )
    task = await round_trip(system, key, body)
    assert task["output"] == {**output, "progress": 100}
    submitted = [r for r in goapi.requests if r[0] == "POST"][0][3]
    assert submitted["model"] == body["model"] and submitted["input"] == task["input"]
