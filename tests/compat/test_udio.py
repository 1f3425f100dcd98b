"""Song, Udio (GoAPI index: Song API Task Creation Examples, [Udio] Song Extend, Create Task, [Udio]
Generate Lyrics). Request shapes: the docs' examples (description, instrumental, user lyrics in
``lyrics`` -- mcp-catalog lists it -- or in ``prompt``; extend with ``continue_song_id``/``continue_at``),
n8n Udio node. Outputs: ``songs[].song_path``; lyrics: ``lyrics_pairs[].text``. Price: seed 003 song
quota (10 per v3.5 generation or continue, lyrics free)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.harness import customer, is_url, round_trip

LYRICS = "[Verse]\nIn the gentle evening air,\nWhispers dance without a care.\n[Chorus]\n"

CASES: list[dict[str, Any]] = [
    {
        "gpt_description_prompt": "night breeze, piano",
        "negative_tags": "",
        "lyrics_type": "generate",
        "seed": -1,
    },
    {"gpt_description_prompt": "night breeze", "lyrics_type": "instrumental", "seed": -1},
    {"lyrics": LYRICS, "lyrics_type": "user", "gpt_description_prompt": "jazz, pop", "seed": -1},
    {"prompt": LYRICS, "lyrics_type": "user", "seed": -1},
    {
        "gpt_description_prompt": "more piano",
        "lyrics_type": "generate",
        "continue_song_id": "song-1",
        "continue_at": 30,
    },
]


@pytest.mark.parametrize("task_input", CASES)
async def test_generate_music(system, task_input: dict[str, Any]) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "music-u",
            "task_type": "generate_music",
            "input": task_input,
            "config": {"service_mode": "public", "webhook_config": {"endpoint": "", "secret": ""}},
        },
    )
    songs = task["output"]["songs"]
    assert len(songs) == 2 and all(is_url(s["song_path"]) and is_url(s["image_path"]) for s in songs)
    assert task["meta"]["usage"] == {"type": "suno_quota", "frozen": 10, "consume": 10}


async def test_generate_lyrics(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "music-u",
            "task_type": "generate_lyrics",
            "input": {"prompt": "White egrets fly over the vast paddy fields"},
            "config": {"webhook_config": {"endpoint": "", "secret": ""}, "service_mode": ""},
        },
    )
    assert task["output"]["lyrics_pairs"][0]["text"]
    assert task["meta"]["usage"]["consume"] == 0
