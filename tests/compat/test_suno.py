"""Song, Suno (``music-s``; GoAPI's catalogue also names it ``suno``). Request shapes: piapi-mcp-server
``generate_music_suno`` (``generate_music`` with prompt + make_instrumental, ``generate_music_custom`` with
prompt/title/tags/negative_tags), mcp-catalog (generate_lyrics, upload_audio). Output read by that
client: ``clips`` keyed by id, each ``audio_url`` and ``image_url``. Price: seed 003 Suno table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("music-s", "generate_music", {"prompt": "a calm lullaby", "make_instrumental": False}, 10),
    ("suno", "generate_music", {"gpt_description_prompt": "lofi beats", "model_version": "v3"}, 5),
    (
        "music-s",
        "generate_music_custom",
        {"prompt": "[Verse]\nla la", "title": "Night", "tags": "jazz", "negative_tags": "metal"},
        10,
    ),
    (
        "music-s",
        "generate_music_custom",
        {"prompt": "[Verse]\nmore", "continue_clip_id": "clip-1", "continue_at": 20},
        10,
    ),
    ("music-s", "upload_audio", {"audio_url": "https://a.example/song.mp3"}, 1),
]


@pytest.mark.parametrize(("model", "task_type", "task_input", "consume"), CASES)
async def test_suno_clips(
    system, model: str, task_type: str, task_input: dict[str, Any], consume: int
) -> None:
    key = await customer(system)
    task = await round_trip(system, key, {"model": model, "task_type": task_type, "input": task_input})
    clips = task["output"]["clips"]
    assert clips and all(is_url(c["audio_url"]) and is_url(c["image_url"]) for c in clips.values())
    assert task["model"] == "music-s"
    assert task["meta"]["usage"] == {"type": "suno_quota", "frozen": consume, "consume": consume}


async def test_suno_lyrics(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {"model": "music-s", "task_type": "generate_lyrics", "input": {"prompt": "White egrets fly"}},
    )
    assert task["output"]["lyrics_pairs"][0]["text"] and task["meta"]["usage"]["consume"] == 0
