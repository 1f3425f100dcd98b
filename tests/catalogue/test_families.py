"""Validation of the GoAPI families (§4, GoAPI breadth): documented constraints refuse with the field named;
shapes the documentation allows are accepted and pass through; price tables with "*"."""

from __future__ import annotations

from typing import Any

import pytest

from taskgate.catalogue.pricing import TablePrice, compute
from taskgate.catalogue.spec import Catalogue
from taskgate.errors import InvalidInput
from taskgate.models import CreateTaskRequest, Lane

URL = "https://img.example/a.png"
DATA = "data:image/png;base64,iVBORw0KGgo="
ORIGIN = "ee6f1989-5de2-4e4a-b860-b059ad57a023"


def validate(catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    return catalogue.validate_input(catalogue.resolve(model, task_type), raw)


def refused(catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        validate(catalogue, model, task_type, raw)
    assert info.value.status == 400
    return info.value


ACCEPTED = [
    # shapes real clients send that taskgate used to refuse
    ("hailuo", "video_generation", {"prompt": "a dog", "duration": 6}),
    (
        "hailuo",
        "video_generation",
        {"prompt": "a dog", "model": "t2v-02", "duration": "10", "resolution": 768},
    ),
    ("music-u", "generate_music", {"lyrics": "[Verse]\nla", "lyrics_type": "user"}),
    ("Qubico/flux1-dev", "txt2img", {"prompt": "a", "width": 864, "height": 1080}),
    ("Qubico/flux1-dev", "txt2img", {"prompt": "a", "width": 256, "height": 4096}),
    ("Qubico/flux1-dev", "img2img", {"prompt": "a", "image": DATA}),
    ("Qubico/image-toolkit", "face-swap", {"target_image": DATA, "swap_image": URL}),
    ("kling", "lip_sync", {"origin_task_id": ORIGIN, "tts_text": "hi", "local_dubbing_url": ""}),
    ("kling", "video_generation", {"prompt": "a", "camera_control": {"type": "simple"}, "version": "2.1"}),
    ("luma", "video_generation", {"prompt": "a", "key_frames": {"frame0": {"type": "", "url": None}}}),
    ("Qubico/trellis", "image-to-3d", {"image": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}),
    ("Qubico/wanx", "txt2video-14b", {"prompt": "a", "aspect_ratio": "9:16", "seed": 7}),
    ("music-u", "generate_music", {"lyrics": "la " * 5000, "lyrics_type": "user"}),  # no documented cap
    ("Qubico/tts", "zero-shot", {"gen_text": "word " * 2000, "ref_audio": URL}),
]


@pytest.mark.parametrize(("model", "task_type", "raw"), ACCEPTED)
def test_documented_shapes_are_accepted(
    catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any]
) -> None:
    normalised = validate(catalogue, model, task_type, raw)
    for field, value in raw.items():
        if value not in ("", None):
            assert field in normalised  # nothing the client sent is dropped


REFUSED = [
    # (model, task_type, input, field, words the reason must contain)
    ("hailuo", "video_generation", {"prompt": "a", "duration": 5}, "input.duration", "6"),
    ("hailuo", "video_generation", {"model": "i2v-01", "prompt": "a"}, "input.image_url", "i2v-01"),
    ("hailuo", "video_generation", {"model": "s2v-01", "image_url": URL}, "input.prompt", "s2v-01"),
    ("hailuo", "video_generation", {"prompt": "a" * 2001}, "input.prompt", "2000"),
    (
        "hailuo",
        "video_generation",
        {"model": "t2v-02", "prompt": "a", "duration": 10, "resolution": 1080},
        "input.resolution",
        "10 s",
    ),
    (
        "Qubico/flux1-dev",
        "img2img",
        {"prompt": "a", "image": "data:image/png;base64,@@@"},
        "input.image",
        "data:",
    ),
    ("Qubico/flux1-dev", "img2img", {"prompt": "a", "image": "file:///etc/passwd"}, "input.image", "http"),
    (
        "Qubico/flux1-dev",
        "img2img",
        {"prompt": "a", "image": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"},
        "input.image",
        "http",
    ),  # bare base64 only where documented (Trellis)
    (
        "Qubico/flux1-dev-advanced",
        "controlnet-lora",
        {"prompt": "a", "control_net_settings": []},
        "input.control_net_settings",
        "at least 1",
    ),
    (
        "Qubico/flux1-dev-advanced",
        "controlnet-lora",
        {"prompt": "a", "control_net_settings": [{"x": 1}]},
        "input.control_net_settings.0.control_type",
        "required",
    ),
    ("kling", "lip_sync", {"tts_text": "hi"}, "input.origin_task_id", "required"),
    ("kling", "ai_try_on", {"model_input": URL}, "input.dress_input", "required"),
    ("kling", "effects", {"image_url": URL}, "input.effect", "required"),
    ("luma", "extend_video", {"prompt": "more"}, "input.origin_task_id", "required"),
    ("music-s", "generate_music", {"make_instrumental": True}, "input.gpt_description_prompt", "required"),
    ("music-s", "generate_music_custom", {"prompt": "a", "title": "t" * 81}, "input.title", "80"),
    ("music-s", "generate_music_custom", {"prompt": "a" * 3001}, "input.prompt", "3000"),
    ("Qubico/tts", "zero-shot", {"ref_audio": URL}, "input.gen_text", "required"),
    ("Qubico/diffrhythm", "txt2audio-base", {"lyrics": "la"}, "input.style_prompt", "required"),
    (
        "Qubico/trellis",
        "image-to-3d",
        {"image": URL, "slat_guidance_strength": 11},
        "input.slat_guidance_strength",
        "10",
    ),
    ("Qubico/trellis", "image-to-3d", {}, "input.image", "required"),
    (
        "Qubico/wanx",
        "img2video-14b-keyframe",
        {"prompt": "a", "start_image": URL},
        "input.end_image",
        "required",
    ),
    ("Qubico/hunyuan", "txt2video", {"prompt": "a", "aspect_ratio": "4:3"}, "input.aspect_ratio", "16:9"),
]


@pytest.mark.parametrize(("model", "task_type", "raw", "field", "reason"), REFUSED)
def test_documented_constraints_refuse_naming_the_field(
    catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any], field: str, reason: str
) -> None:
    error = refused(catalogue, model, task_type, raw)
    assert error.field == field
    assert reason.lower() in error.reason.lower()


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        ({"model": "t2v-01"}, 140),
        ({"model": "t2v-01", "duration": 10}, 140),  # "*": one price whatever the duration
        ({"model": "s2v-01", "image_url": URL}, 210),
        ({"model": "t2v-02", "duration": 10, "resolution": 768}, 350),
        ({"model": "i2v-02", "image_url": URL}, 175),
    ],
)
def test_hailuo_prices(catalogue: Catalogue, raw: dict[str, Any], amount: int) -> None:
    spec = catalogue.resolve("hailuo", "video_generation")
    task_input = catalogue.validate_input(spec, {"prompt": "a", **raw})
    assert catalogue.price(spec, task_input, catalogue.plan("developer")).amount == amount


def test_an_unpriced_hailuo_model_is_refused_naming_it(catalogue: Catalogue) -> None:
    spec = catalogue.resolve("hailuo", "video_generation")
    task_input = catalogue.validate_input(spec, {"prompt": "a", "model": "v9-future"})
    with pytest.raises(InvalidInput) as info:
        catalogue.price(spec, task_input, catalogue.plan("developer"))
    assert info.value.field == "input.model" and "v9-future" in info.value.reason


def test_the_most_specific_table_key_wins() -> None:
    rule = TablePrice(scheme="table", by=("a", "b"), table={"*/*": 1, "x/*": 2, "x/y": 3, "*/y": 4})
    cases = ({"a": "x", "b": "y"}, {"a": "x", "b": "z"}, {"a": "q", "b": "y"}, {"a": "q", "b": "z"})
    assert [compute(rule, d, Lane.FAST, None) for d in cases] == [3, 2, 4, 1]


def test_null_config_and_null_webhook_fields_mean_defaults() -> None:
    body = CreateTaskRequest.model_validate({"model": "m", "task_type": "t", "input": {}, "config": None})
    assert body.config.service_mode == "" and body.config.webhook_config.endpoint == ""
    body = CreateTaskRequest.model_validate(
        {
            "model": "m",
            "task_type": "t",
            "input": {},
            "config": {"service_mode": None, "webhook_config": {"endpoint": None, "secret": None}},
        }
    )
    assert body.config.webhook_config.secret == ""
