"""Every seed-003 price the catalogue holds, checked against the seed's own figures.

The expected tables below are typed in from seed 003's text, not read from the TOML.
"""

from __future__ import annotations

from typing import Any

import pytest

from taskgate.catalogue.spec import Catalogue, Priced
from taskgate.errors import InvalidInput
from taskgate.models import Lane

ORIGIN = "ee6f1989-5de2-4e4a-b860-b059ad57a023"

# Seed 003, "Midjourney API Credit Pricing": quotas for endpoint types 0..4 per mode and version class.
MJ_SEED: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("relax", "5.2"): (3, 3, 2, 1, 0),
    ("relax", "6"): (6, 6, 2, 1, 0),
    ("fast", "5.2"): (9, 9, 2, 1, 0),
    ("fast", "6"): (14, 14, 2, 1, 0),
    ("turbo", "5.2"): (25, 20, 2, 1, 0),
    ("turbo", "6"): (32, 28, 2, 1, 0),
}
# Seed 003 notes 1-4: endpoint type of each task type.
MJ_TYPES = {
    "imagine": 0,
    "variation": 1,
    "outpaint": 1,
    "pan": 1,
    "blend": 1,
    "inpaint": 1,
    "reroll": 1,
    "describe": 2,
    "upscale": 2,
    "seed": 3,
}
# Note 6, special upscalers: 2x and 4x by mode; light/beta = V5.2 type 1; subtle/creative = V6 type 1.
MJ_SPECIAL = {
    "2x": {"turbo": 40, "fast": 18, "relax": 9},
    "4x": {"turbo": 120, "fast": 54, "relax": 27},
    **{name: {m: MJ_SEED[(m, "5.2")][1] for m in ("relax", "fast", "turbo")} for name in ("light", "beta")},
    **{
        name: {m: MJ_SEED[(m, "6")][1] for m in ("relax", "fast", "turbo")} for name in ("subtle", "creative")
    },
}
PROMPTED = {"imagine", "variation", "reroll", "inpaint", "outpaint", "pan"}


def mj_input(task_type: str, mode: str, version: str) -> dict[str, Any]:
    base: dict[str, Any] = {"process_mode": mode}
    extra: dict[str, dict[str, Any]] = {
        "imagine": {},
        "variation": {"origin_task_id": ORIGIN, "index": "2"},
        "reroll": {"origin_task_id": ORIGIN},
        "inpaint": {"origin_task_id": ORIGIN, "mask": "aGVsbG8="},
        "outpaint": {"origin_task_id": ORIGIN, "zoom_ratio": 1.5},
        "pan": {"origin_task_id": ORIGIN, "direction": "left"},
        "blend": {"image_urls": ["https://img.example/a.png", "https://img.example/b.png"]},
        "describe": {"image_url": "https://img.example/a.png"},
        "upscale": {"origin_task_id": ORIGIN, "index": "1"},
        "seed": {"origin_task_id": ORIGIN},
    }
    if task_type in PROMPTED:  # the version comes from the prompt's flag ...
        base["prompt"] = f"a lighthouse at dusk --ar 3:2 --v {version}"
    else:  # ... or from input.version
        base["version"] = version
    return base | extra[task_type]


def price(
    catalogue: Catalogue, model: str, task_type: str, raw: dict[str, Any], plan: str = "free"
) -> Priced:
    spec = catalogue.resolve(model, task_type)
    return catalogue.price(spec, catalogue.validate_input(spec, raw), catalogue.plan(plan))


MJ_CASES = [
    (task_type, mode, version, amounts[MJ_TYPES[task_type]])
    for (mode, version), amounts in MJ_SEED.items()
    for task_type in MJ_TYPES
]


@pytest.mark.parametrize(("task_type", "mode", "version", "expected"), MJ_CASES)
def test_midjourney_table(
    catalogue: Catalogue, task_type: str, mode: str, version: str, expected: int
) -> None:
    priced = price(catalogue, "midjourney", task_type, mj_input(task_type, mode, version))
    assert priced == Priced("mj_quota", expected, Lane(mode))


SPECIAL_CASES = [(name, mode, amount) for name, modes in MJ_SPECIAL.items() for mode, amount in modes.items()]


@pytest.mark.parametrize(("upscaler", "mode", "expected"), SPECIAL_CASES)
def test_midjourney_special_upscalers(catalogue: Catalogue, upscaler: str, mode: str, expected: int) -> None:
    raw = {"origin_task_id": ORIGIN, "index": upscaler, "process_mode": mode}
    assert price(catalogue, "midjourney", "upscale", raw) == Priced("mj_quota", expected, Lane(mode))


@pytest.mark.parametrize(
    ("prompt", "version", "expected_fast_imagine"),
    [
        ("a cat", None, 14),  # default: the V6 class
        ("a cat --v 5", None, 9),
        ("a cat --version 5.2", None, 9),
        ("a cat --v 6.1", None, 14),
        ("a cat --v 7", None, 14),
        ("a cat --niji 5", None, 9),
        ("a cat --niji 6", None, 14),
        ("a cat --niji", "5.2", 9),  # a bare --niji names no version: input.version decides
        ("a cat --v 6 --v 5.2", None, 9),  # the last flag wins
        ("a cat", "5.1", 9),
        ("a cat --v 6", "5.2", 14),  # the prompt's flag beats input.version
    ],
)
def test_midjourney_version_class(
    catalogue: Catalogue, prompt: str, version: str | None, expected_fast_imagine: int
) -> None:
    raw: dict[str, Any] = {"prompt": prompt} | ({"version": version} if version else {})
    assert price(catalogue, "mj", "imagine", raw).amount == expected_fast_imagine


@pytest.mark.parametrize("plan", ["free", "developer", "premium"])
def test_face_swap_is_7_credits_on_every_plan(catalogue: Catalogue, plan: str) -> None:
    raw = {"target_image": "https://img.example/t.png", "swap_image": "https://img.example/s.png"}
    assert price(catalogue, "Qubico/image-toolkit", "face-swap", raw, plan) == Priced("credits", 7, Lane.FAST)


@pytest.mark.parametrize("plan", ["free", "developer", "premium"])
@pytest.mark.parametrize(("model_version", "expected"), [("v3", 5), ("v3.5", 10), (None, 10)])
def test_suno_music_create(catalogue: Catalogue, plan: str, model_version: str | None, expected: int) -> None:
    raw = {"gpt_description_prompt": "a calm jazz tune"} | (
        {"model_version": model_version} if model_version else {}
    )
    assert price(catalogue, "music-u", "generate_music", raw, plan) == Priced(
        "suno_quota", expected, Lane.FAST
    )


def test_luma_video_is_30_quotas(catalogue: Catalogue) -> None:
    raw = {"prompt": "waves on a beach", "duration": 5}
    assert price(catalogue, "luma", "video_generation", raw, "developer") == Priced(
        "luma_quota", 30, Lane.FAST
    )


def test_remove_background_is_2_credits(catalogue: Catalogue) -> None:
    raw = {"image": "https://img.example/a.png", "image_size": "3000x3000"}
    assert price(catalogue, "Qubico/image-toolkit", "background-remove", raw) == Priced(
        "credits", 2, Lane.FAST
    )


# Seed 003, "Image Editing API Credit Pricing": (scale, picture) -> credits.
UPSCALE_SEED = [
    (2, "1024x1024", 7),
    (2, "2048x2048", 14),
    (4, "1024x1024", 14),
    (4, "2048x2048", 28),
    (8, "1024x1024", 28),
    (8, "2048x2048", 56),
]
SEGMENT_SEED = [("1024x1024", 14), ("2048x2048", 28), ("3072x3072", 56)]


@pytest.mark.parametrize(("scale", "size", "expected"), UPSCALE_SEED)
def test_image_upscale(catalogue: Catalogue, scale: int, size: str, expected: int) -> None:
    raw = {"image": "https://img.example/a.png", "scale": scale, "image_size": size}
    assert price(catalogue, "Qubico/image-toolkit", "upscale", raw).amount == expected


@pytest.mark.parametrize(("size", "expected"), SEGMENT_SEED)
def test_segment_with_prompt(catalogue: Catalogue, size: str, expected: int) -> None:
    raw = {"image": "https://img.example/a.png", "prompt": "the dog", "image_size": size}
    assert price(catalogue, "Qubico/image-toolkit", "segment", raw).amount == expected


@pytest.mark.parametrize(
    ("raw_size", "expected"),
    [
        ({}, 7),  # unknown size: the small class
        ({"width": 1024, "height": 1024}, 7),
        ({"width": 1025, "height": 1024}, 14),  # just over 1024x1024 pixels
        ({"image_size": "1500x600"}, 7),  # 900,000 pixels fit the 1024x1024 class
        ({"image_size": "2000 x 1000"}, 14),
    ],
)
def test_upscale_size_class(catalogue: Catalogue, raw_size: dict[str, Any], expected: int) -> None:
    raw = {"image": "https://img.example/a.png", "scale": 2} | raw_size
    assert price(catalogue, "Qubico/image-toolkit", "upscale", raw).amount == expected


def test_prices_not_in_seed_are_positive_credits(catalogue: Catalogue) -> None:
    flux = [
        price(catalogue, m, "txt2img", {"prompt": "a fox"}) for m in ("flux", "flux-dev", "flux-dev-advanced")
    ]
    assert [p.unit for p in flux] == ["credits"] * 3
    assert 0 < flux[0].amount < flux[1].amount < flux[2].amount
    assert (
        price(catalogue, "flux", "img2img", {"prompt": "a fox", "image": "https://i.example/a.png"})
        == flux[0]
    )
    kling = {
        (mode, d): price(
            catalogue, "kling", "video_generation", {"prompt": "x", "mode": mode, "duration": d}
        ).amount
        for mode in ("std", "pro")
        for d in (5, 10)
    }
    assert kling[("std", 10)] == 2 * kling[("std", 5)] and kling[("pro", 5)] > kling[("std", 5)]
    hailuo = price(catalogue, "hailuo", "video_generation", {"prompt": "x"})
    assert hailuo.unit == "credits" and hailuo.amount > 0


def test_price_without_validation_uses_defaults(catalogue: Catalogue) -> None:
    spec = catalogue.resolve("midjourney", "imagine")
    assert catalogue.price(spec, {"prompt": "x"}, catalogue.plan("free")) == Priced("mj_quota", 14, Lane.FAST)


def test_bad_mode_in_unvalidated_input_is_invalid(catalogue: Catalogue) -> None:
    spec = catalogue.resolve("midjourney", "imagine")
    with pytest.raises(InvalidInput) as info:
        catalogue.lane(spec, {"prompt": "x", "process_mode": "warp"})
    assert info.value.field == "input.process_mode"


def test_oversized_picture_has_no_price(catalogue: Catalogue) -> None:
    spec = catalogue.resolve("Qubico/image-toolkit", "upscale")
    with pytest.raises(InvalidInput) as info:
        catalogue.price(
            spec, {"image": "https://i.example/a", "image_size": "4096x4096"}, catalogue.plan("free")
        )
    assert info.value.field == "input.image_size"
