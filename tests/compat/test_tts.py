"""TTS (GoAPI index: Zeroshot Text-to-Speech F5-TTS). Request shape: piapi-mcp-server ``tts_zero_shot``
(gen_text, ref_text, ref_audio); output read: ``audio_url``."""

from __future__ import annotations

from tests.compat.harness import customer, fetch_ok, is_url, round_trip


async def test_zero_shot(system) -> None:
    key = await customer(system)
    task = await round_trip(
        system,
        key,
        {
            "model": "Qubico/tts",
            "task_type": "zero-shot",
            "input": {"gen_text": "Hello there.", "ref_text": "", "ref_audio": "https://a.example/voice.wav"},
        },
    )
    assert is_url(task["output"]["audio_url"]) and await fetch_ok(system, task["output"]["audio_url"])
    assert task["meta"]["usage"]["consume"] == 7


async def test_ref_audio_is_required(system) -> None:
    key = await customer(system)
    status, body = await system.call(
        "POST",
        "/api/v1/task",
        key,
        json={"model": "Qubico/tts", "task_type": "zero-shot", "input": {"gen_text": "Hello"}},
    )
    assert status == 400 and body["detail"]["field"] == "input.ref_audio"
