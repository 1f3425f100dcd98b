"""Input validation: bad inputs name the field and say why; good inputs pass and are normalised."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskgate.catalogue.spec import Catalogue
from taskgate.errors import InvalidInput
from taskgate.models import Lane

ORIGIN = "ee6f1989-5de2-4e4a-b860-b059ad57a023"
URL = "https://img.example/a.png"


def invalid(catalogue: Catalogue, model: str, task_type: str, raw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        catalogue.validate_input(catalogue.resolve(model, task_type), raw)
    assert info.value.status == 400
    return info.value


BAD_INPUTS = [
    # (model, task_type, input, field, words the reason must contain)
    ("midjourney", "imagine", {}, "input.prompt", "required"),
    ("midjourney", "imagine", {"prompt": "   \n\t"}, "input.prompt", "blank"),
    ("midjourney", "imagine", {"prompt": "x" * 4001}, "input.prompt", "4000"),
    ("midjourney", "imagine", {"prompt": 42}, "input.prompt", "string"),
    ("midjourney", "imagine", {"prompt": "a", "aspect_ratio": "wide"}, "input.aspect_ratio", "W:H"),
    ("midjourney", "imagine", {"prompt": "a", "aspect_ratio": "1:20"}, "input.aspect_ratio", "1:20"),
    ("midjourney", "imagine", {"prompt": "a", "aspect_ratio": "0:9"}, "input.aspect_ratio", "0:9"),
    ("midjourney", "imagine", {"prompt": "a", "process_mode": "slow"}, "input.process_mode", "relax"),
    ("midjourney", "imagine", {"prompt": "a", "version": "latest"}, "input.version", "version"),
    ("midjourney", "describe", {"image_url": "ftp://img.example/a.png"}, "input.image_url", "http"),
    ("midjourney", "describe", {"image_url": "javascript:alert(1)"}, "input.image_url", "http"),
    ("midjourney", "describe", {"image_url": "https://"}, "input.image_url", "http"),
    ("midjourney", "describe", {}, "input.image_url", "required"),
    ("midjourney", "blend", {"image_urls": [URL]}, "input.image_urls", "at least 2"),
    ("midjourney", "blend", {"image_urls": [URL] * 6}, "input.image_urls", "at most 5"),
    ("midjourney", "blend", {"image_urls": [URL, "file:///etc/passwd"]}, "input.image_urls.1", "http"),
    ("midjourney", "blend", {"image_urls": [URL, URL], "dimension": "round"}, "input.dimension", "square"),
    ("midjourney", "upscale", {"index": "1"}, "input.origin_task_id", "required"),
    ("midjourney", "upscale", {"origin_task_id": "abc", "index": "1"}, "input.origin_task_id", "UUID"),
    ("midjourney", "upscale", {"origin_task_id": ORIGIN, "index": "5"}, "input.index", "'1'"),
    ("midjourney", "upscale", {"origin_task_id": ORIGIN}, "input.index", "required"),
    ("midjourney", "variation", {"origin_task_id": ORIGIN, "index": "2x"}, "input.index", "'1'"),
    ("midjourney", "pan", {"origin_task_id": ORIGIN, "direction": "north"}, "input.direction", "up"),
    ("midjourney", "outpaint", {"origin_task_id": ORIGIN, "zoom_ratio": 3}, "input.zoom_ratio", "2"),
    ("midjourney", "inpaint", {"origin_task_id": ORIGIN}, "input.mask", "required"),
    ("flux", "txt2img", {"prompt": ""}, "input.prompt", "blank"),
    ("flux", "txt2img", {"prompt": "a", "width": 0}, "input.width", "greater than or equal to 1"),
    ("flux", "txt2img", {"prompt": "a", "height": 4096}, "input.width", "1048576 pixels"),
    ("flux", "txt2img", {"prompt": "a", "width": 1536, "height": 1536}, "input.width", "pixels"),
    ("flux", "img2img", {"prompt": "a"}, "input.image", "required"),
    ("flux", "img2img", {"prompt": "a", "image": "img.example/a.png"}, "input.image", "http"),
    ("kling", "video_generation", {}, "input.prompt", "required"),
    ("kling", "video_generation", {"prompt": "a", "duration": 7}, "input.duration", "5 or 10"),
    ("kling", "video_generation", {"prompt": "a", "aspect_ratio": "5:4"}, "input.aspect_ratio", "16:9"),
    ("kling", "video_generation", {"prompt": "a", "mode": "ultra"}, "input.mode", "std"),
    ("luma", "video_generation", {"prompt": "a", "image_url": "ftp://x/y"}, "input.image_url", "http"),
    ("hailuo", "video_generation", {"prompt": "  "}, "input.prompt", "required"),
    ("music-u", "generate_music", {}, "input.prompt", "required"),
    (
        "music-u",
        "generate_music",
        {"gpt_description_prompt": "jazz", "lyrics_type": "user"},
        "input.lyrics",
        "lyrics",
    ),
    ("music-u", "generate_music", {"prompt": "la la", "model_version": "v9"}, "input.model_version", "v3"),
    ("Qubico/image-toolkit", "face-swap", {"target_image": URL}, "input.swap_image", "required"),
    (
        "Qubico/image-toolkit",
        "face-swap",
        {"target_image": "x", "swap_image": URL},
        "input.target_image",
        "http",
    ),
    ("Qubico/image-toolkit", "background-remove", {"image": ""}, "input.image", "http"),
    ("Qubico/image-toolkit", "upscale", {"image": URL, "scale": 3}, "input.scale", "2, 4 or 8"),
    (
        "Qubico/image-toolkit",
        "upscale",
        {"image": URL, "image_size": "big"},
        "input.image_size",
        "WIDTHxHEIGHT",
    ),
    (
        "Qubico/image-toolkit",
        "upscale",
        {"image": URL, "image_size": "4096x4096"},
        "input.image_size",
        "2048",
    ),
    ("Qubico/image-toolkit", "upscale", {"image": URL, "width": 3000, "height": 3000}, "input.width", "2048"),
    ("Qubico/image-toolkit", "segment", {"image": URL}, "input.prompt", "required"),
]


@pytest.mark.parametrize(("model", "task_type", "raw", "field", "reason"), BAD_INPUTS)
def test_bad_input_names_field(
    catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any], field: str, reason: str
) -> None:
    error = invalid(catalogue, model, task_type, raw)
    assert error.field == field
    assert reason.lower() in error.reason.lower()
    assert error.detail == {"field": field, "reason": error.reason}


def test_input_must_be_an_object(catalogue: Catalogue) -> None:
    assert invalid(catalogue, "midjourney", "imagine", ["prompt"]).field == "input"


@pytest.mark.parametrize(
    ("model", "task_type", "field", "known"),
    [
        ("dall-e-9", "imagine", "model", "midjourney"),
        ("", "imagine", "model", "Qubico/flux1-schnell"),
        ("midjourney", "txt2img", "task_type", "imagine"),
        ("flux", "imagine", "task_type", "txt2img"),
    ],
)
def test_unknown_model_or_task_type(
    catalogue: Catalogue, model: str, task_type: str, field: str, known: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        catalogue.resolve(model, task_type)
    assert info.value.field == field
    assert "unknown" in info.value.reason and known in info.value.reason


GOOD_INPUTS = [
    # (model, task_type, input, normalised input)
    (
        "midjourney",
        "imagine",
        {
            "prompt": "  a red fox  ",
            "aspect_ratio": " 16 : 9 ",
            "process_mode": "Relax",
            "bot_id": 7,
            "skip_prompt_check": True,
        },
        {
            "prompt": "a red fox",
            "aspect_ratio": "16:9",
            "process_mode": "relax",
            "bot_id": "7",
            "skip_prompt_check": True,
        },
    ),
    (
        "midjourney",
        "imagine",
        {"prompt": "x" * 4000, "bot_id": 0},
        {"prompt": "x" * 4000, "process_mode": "fast"},
    ),
    (
        "midjourney",
        "upscale",
        {"origin_task_id": ORIGIN.upper(), "index": 3},
        {"origin_task_id": ORIGIN, "index": "3", "process_mode": "fast"},
    ),
    (
        "midjourney",
        "upscale",
        {"origin_task_id": ORIGIN, "index": "Creative", "process_mode": "turbo"},
        {"origin_task_id": ORIGIN, "index": "creative", "process_mode": "turbo"},
    ),
    (
        "midjourney",
        "variation",
        {"origin_task_id": ORIGIN, "index": "high_variation", "prompt": ""},
        {"origin_task_id": ORIGIN, "index": "high_variation", "process_mode": "fast"},
    ),
    (
        "midjourney",
        "blend",
        {"image_urls": [URL, " http://img.example/b.png "], "dimension": "Portrait"},
        {"image_urls": [URL, "http://img.example/b.png"], "dimension": "portrait", "process_mode": "fast"},
    ),
    ("midjourney", "describe", {"image_url": URL}, {"image_url": URL, "process_mode": "fast"}),
    (
        "midjourney",
        "pan",
        {"origin_task_id": ORIGIN, "direction": "UP"},
        {"origin_task_id": ORIGIN, "direction": "up", "process_mode": "fast"},
    ),
    ("midjourney", "seed", {"origin_task_id": ORIGIN}, {"origin_task_id": ORIGIN, "process_mode": "fast"}),
    (
        "flux",
        "txt2img",
        {"prompt": "a fox", "width": "512", "height": 768, "lora_settings": [{"x": 1}]},
        {"prompt": "a fox", "width": 512, "height": 768, "lora_settings": [{"x": 1}]},  # extras pass through
    ),
    (
        "kling",
        "video_generation",
        {"image_url": URL, "duration": "10", "aspect_ratio": "9:16"},
        {"image_url": URL, "duration": 10, "aspect_ratio": "9:16", "mode": "std"},
    ),
    (
        "music-u",
        "generate_music",
        {"prompt": "la la la", "lyrics_type": "user", "model_version": "chirp-v3-5"},
        {"prompt": "la la la", "lyrics_type": "user", "model_version": "v3.5"},
    ),
    (
        "Qubico/image-toolkit",
        "upscale",
        {"image": URL, "scale": "4", "image_size": "1024 x 768"},
        {"image": URL, "scale": 4, "image_size": "1024x768"},
    ),
]


@pytest.mark.parametrize(("model", "task_type", "raw", "expected"), GOOD_INPUTS)
def test_good_input_is_normalised(
    catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any], expected: dict[str, Any]
) -> None:
    spec = catalogue.resolve(model, task_type)
    normalised = catalogue.validate_input(spec, raw)
    assert normalised == expected
    assert catalogue.validate_input(spec, normalised) == normalised  # normalising is idempotent


@given(
    prompt=st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != ""),
    mode=st.sampled_from(["relax", "fast", "turbo", "RELAX", " Fast "]),
    ratio=st.tuples(st.integers(1, 8), st.integers(1, 8)),
)
def test_imagine_round_trips(catalogue: Catalogue, prompt: str, mode: str, ratio: tuple[int, int]) -> None:
    spec = catalogue.resolve("midjourney", "imagine")
    raw = {"prompt": prompt, "process_mode": mode, "aspect_ratio": f"{ratio[0]}:{ratio[1]}"}
    normalised = catalogue.validate_input(spec, raw)
    assert normalised["prompt"] == prompt.strip()
    assert catalogue.lane(spec, normalised) == Lane(mode.strip().lower())
    assert catalogue.validate_input(spec, normalised) == normalised
