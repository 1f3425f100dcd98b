"""Result shapes of the simulated upstream, per family, as GoAPI documents them (the sources are cited
in ``taskgate/data/catalogue.toml``): a GoAPI client reads the same fields from the simulator as from
GoAPI.

- images (Midjourney, Flux, image toolkit, Kling try-on): ``image_url`` and ``image_urls``;
- video (Hailuo, Hunyuan, WanX, Skyreels, Framepack, AI Hug, video toolkit): ``video_url``;
- Kling: ``works[]`` (``video.resource``, ``resource_without_watermark``, ``cover``) and ``video_url``;
- Luma: ``video`` / ``video_raw`` / ``thumbnail`` / ``last_frame`` as ``{url, width, height}``;
- Udio: ``songs[]`` (``song_path``, ``image_path``, ``title``, ``lyrics``, ``duration``); lyrics:
  ``lyrics_pairs[]``; Suno: ``clips`` keyed by clip id (``audio_url``, ``image_url``, ``video_url``);
- audio (TTS, MMAudio, DiffRhythm, Ace Step): ``audio_url``;
- Trellis: ``no_background_image``, ``combined_video``, ``model_file``.

Every URL points at the simulator's ``/files/<name>.<ext>``, which serves a tiny file of that type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

IMAGES_PER_JOB = 4
SONGS_PER_JOB = 2  # "each generation will produce TWO music clips" (seed 003)
FRAME = {"width": 1280, "height": 720}
VIDEO_MODELS = frozenset(
    {
        "hailuo",
        "Qubico/hunyuan",
        "Qubico/wanx",
        "Qubico/skyreels",
        "Qubico/framepack",
        "Qubico/hug-video",
        "Qubico/video-toolkit",
    }
)
AUDIO_MODELS = frozenset({"Qubico/tts", "Qubico/mmaudio", "Qubico/diffrhythm", "Qubico/ace-step"})

Shape = Callable[[str, str], dict[str, Any]]  # (file stem, files base) -> output


def output_for(model: str, task_type: str, job_id: str, files_base: str) -> dict[str, Any]:
    """The ``output`` of a completed job of ``model`` / ``task_type``."""
    return _shape(model, task_type)(job_id, files_base)


def _shape(model: str, task_type: str) -> Shape:
    special: dict[tuple[str, str], Shape] = {
        ("kling", "ai_try_on"): _images,
        ("music-u", "generate_lyrics"): _lyrics,
        ("music-s", "generate_lyrics"): _lyrics,
    }
    by_model: dict[str, Shape] = {
        "kling": _kling,
        "luma": _luma,
        "music-u": _udio,
        "music-s": _suno,
        "Qubico/trellis": _trellis,
    }
    if (model, task_type) in special:
        return special[(model, task_type)]
    if model in by_model:
        return by_model[model]
    if model in VIDEO_MODELS:
        return _video
    if model in AUDIO_MODELS:
        return _audio
    return _images


def _url(files_base: str, stem: str, ext: str) -> str:
    return f"{files_base}/files/{stem}.{ext}"


def _images(stem: str, base: str) -> dict[str, Any]:
    urls = [_url(base, f"{stem}-{i}", "png") for i in range(1, IMAGES_PER_JOB + 1)]
    return {"image_url": _url(base, stem, "png"), "image_urls": urls}


def _video(stem: str, base: str) -> dict[str, Any]:
    return {"video_url": _url(base, stem, "mp4")}


def _audio(stem: str, base: str) -> dict[str, Any]:
    return {"audio_url": _url(base, stem, "mp3")}


def _kling(stem: str, base: str) -> dict[str, Any]:
    video = _url(base, stem, "mp4")
    work = {
        "status": 99,
        "type": "m2v_txt2video",
        "cover": {
            "resource": _url(base, f"{stem}-cover", "png"),
            "resource_without_watermark": "",
            **FRAME,
            "duration": 0,
        },
        "video": {
            "resource": video,
            "resource_without_watermark": _url(base, f"{stem}-nowm", "mp4"),
            **FRAME,
            "duration": 5100,
        },
    }
    return {"type": "m2v_txt2video", "status": 99, "works": [work], "video_url": video}


def _luma(stem: str, base: str) -> dict[str, Any]:
    video = {"url": _url(base, stem, "mp4"), **FRAME}
    return {
        "video": video,
        "video_raw": {"url": _url(base, f"{stem}-raw", "mp4"), **FRAME},
        "thumbnail": {"url": _url(base, f"{stem}-thumb", "png"), **FRAME},
        "last_frame": {"url": _url(base, f"{stem}-last", "png"), **FRAME},
    }


def _udio(stem: str, base: str) -> dict[str, Any]:
    songs = [
        {
            "id": f"{stem}-{i}",
            "title": f"Simulated song {i}",
            "song_path": _url(base, f"{stem}-{i}", "mp3"),
            "image_path": _url(base, f"{stem}-{i}", "png"),
            "lyrics": "[Verse]\nla la la",
            "tags": ["sim"],
            "duration": 32.0,
        }
        for i in range(1, SONGS_PER_JOB + 1)
    ]
    return {"songs": songs}


def _suno(stem: str, base: str) -> dict[str, Any]:
    clips = {}
    for i in range(1, SONGS_PER_JOB + 1):
        clip = f"{stem}-{i}"
        clips[clip] = {
            "id": clip,
            "title": f"Simulated clip {i}",
            "audio_url": _url(base, clip, "mp3"),
            "image_url": _url(base, clip, "png"),
            "video_url": _url(base, clip, "mp4"),
            "metadata": {"duration": 32.0},
        }
    return {"clips": clips}


def _lyrics(stem: str, base: str) -> dict[str, Any]:
    text = "[Verse]\nSimulated words\n\n[Chorus]\nla la la"
    return {"lyrics_pairs": [{"title": "Simulated lyrics", "text": text} for _ in range(SONGS_PER_JOB)]}


def _trellis(stem: str, base: str) -> dict[str, Any]:
    return {
        "no_background_image": _url(base, f"{stem}-nobg", "png"),
        "combined_video": _url(base, stem, "mp4"),
        "model_file": _url(base, stem, "glb"),
    }
