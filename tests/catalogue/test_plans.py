"""Plans (seed 003 / seed 000 figures and features), wallet units, B7 conversion and task flags."""

from __future__ import annotations

import pytest

from taskgate.catalogue.spec import Catalogue, Feature, IncorrectPenalty, PlanSpec
from taskgate.errors import InvalidInput
from taskgate.models import Lane, Plan

HOUR, DAY = 3600, 86400
# plan: (concurrency, relax/day, incorrect/day, retention seconds, B6 consequence)
PLAN_SEED = {
    "free": (3, 100, 30, 48 * HOUR, IncorrectPenalty.BLOCK),
    "developer": (9, 500, 60, 7 * DAY, IncorrectPenalty.NO_REFUND),
    "premium": (30, 1500, 60, 30 * DAY, IncorrectPenalty.NO_REFUND),
    "enterprise": (100, 1500, 60, 30 * DAY, IncorrectPenalty.NO_REFUND),  # custom; these are defaults
}


def test_plan_names_match_the_plan_enum(catalogue: Catalogue) -> None:
    assert set(catalogue.plans) == {plan.value for plan in Plan}


@pytest.mark.parametrize("name", list(PLAN_SEED))
def test_plan_figures(catalogue: Catalogue, name: str) -> None:
    concurrency, relax, incorrect, retention, penalty = PLAN_SEED[name]
    plan = catalogue.plan(name)
    assert (plan.name, plan.concurrency, plan.relax_daily, plan.incorrect_daily, plan.retention_s) == (
        name,
        concurrency,
        relax,
        incorrect,
        retention,
    )
    assert plan.incorrect_penalty == penalty
    assert plan.free_incorrect_blocks is (name == "free")


def test_paid_plans_get_every_feature_and_free_none(catalogue: Catalogue) -> None:
    assert catalogue.plan("free").features == frozenset()
    for name in ("developer", "premium", "enterprise"):
        assert catalogue.plan(name).features == frozenset(Feature)
        assert all(catalogue.plan(name).has(feature) for feature in Feature)


def test_plan_lookup_accepts_seed_alias_and_case(catalogue: Catalogue) -> None:
    assert catalogue.plan("Hobbyist") is catalogue.plan("free")
    assert catalogue.plan(" PREMIUM ") is catalogue.plan("premium")


def test_unknown_plan(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidInput) as info:
        catalogue.plan("platinum")
    assert info.value.field == "plan" and "developer" in info.value.reason


def test_plan_spec_is_immutable(catalogue: Catalogue) -> None:
    plan = catalogue.plan("free")
    with pytest.raises(AttributeError):
        plan.concurrency = 99  # type: ignore[misc]
    with pytest.raises(TypeError):
        catalogue.plans["free"] = plan  # type: ignore[index]
    assert PlanSpec("x", 1, 1, 1, 1, frozenset()).free_incorrect_blocks is False


def test_units_and_conversion_rates(catalogue: Catalogue) -> None:
    assert catalogue.units == ("credits", "mj_quota", "suno_quota", "luma_quota", "gpts_quota", "llm_quota")
    # seed 003's conversion rates: units per US dollar
    assert dict(catalogue.per_usd) == {
        "credits": 700,
        "mj_quota": 200,
        "suno_quota": 250,
        "luma_quota": 100,
        "gpts_quota": 1000,
        "llm_quota": 10_000_000,
    }
    mj = catalogue.auto_convert["mj_quota"]  # seed 003 note 7: $1 = 700 credits = 200 quotas
    assert (mj.from_unit, mj.below, mj.attempts) == ("credits", 100, (2100, 700))
    assert mj.converted(700) == 200 and mj.converted(2100) == 600


@pytest.mark.parametrize(
    ("prompt_check", "plan", "expected"),
    [
        ({"skip_prompt_check": True}, "premium", False),
        ({"skip_prompt_check": True}, "free", True),  # the free plan may not skip it
        ({}, "premium", True),
        ({"skip_prompt_check": False}, "developer", True),
    ],
)
def test_prompt_check_applies(
    catalogue: Catalogue, prompt_check: dict[str, bool], plan: str, expected: bool
) -> None:
    assert catalogue.prompt_check_applies(catalogue.plan(plan), {"prompt": "x"} | prompt_check) is expected


MJ_TASKS = (
    "imagine",
    "upscale",
    "variation",
    "reroll",
    "describe",
    "blend",
    "inpaint",
    "outpaint",
    "pan",
    "seed",
)


@pytest.mark.parametrize("task_type", MJ_TASKS)
def test_midjourney_task_specs(catalogue: Catalogue, task_type: str) -> None:
    spec = catalogue.resolve("midjourney", task_type)
    assert (spec.model, spec.task_type, spec.unit, spec.provider_model) == (
        "midjourney",
        task_type,
        "mj_quota",
        "midjourney",
    )
    assert spec.modes == ("relax", "fast", "turbo") and spec.default_mode == "fast"
    assert spec.relax_counted is True
    assert spec.counts_for_relax_bonus is (task_type in ("imagine", "blend"))


def test_lanes(catalogue: Catalogue) -> None:
    imagine = catalogue.resolve("midjourney", "imagine")
    assert catalogue.lane(imagine, {"prompt": "x"}) is Lane.FAST
    assert catalogue.lane(imagine, {"prompt": "x", "process_mode": "relax"}) is Lane.RELAX
    assert catalogue.lane(imagine, {"prompt": "x", "process_mode": "turbo"}) is Lane.TURBO
    flux = catalogue.resolve("flux", "txt2img")
    assert catalogue.lane(flux, {"prompt": "x", "process_mode": "relax"}) is Lane.FAST


@pytest.mark.parametrize(
    ("alias", "task_type", "model", "unit", "provider"),
    [
        ("flux", "txt2img", "Qubico/flux1-schnell", "credits", "flux"),
        ("Qubico/flux1-dev", "img2img", "Qubico/flux1-dev", "credits", "flux"),
        ("qubico/FLUX1-dev-advanced", "txt2img", "Qubico/flux1-dev-advanced", "credits", "flux"),
        ("suno", "generate_music", "music-s", "suno_quota", "suno"),  # GoAPI's own name for music-s
        ("udio", "generate_music", "music-u", "suno_quota", "suno"),
        ("wanx", "txt2video-1.3b", "Qubico/wanx", "credits", "qubico"),
        ("mj", "imagine", "midjourney", "mj_quota", "midjourney"),
        ("kling", "video_generation", "kling", "credits", "kling"),
        ("luma", "video_generation", "luma", "luma_quota", "luma"),
        ("hailuo", "video_generation", "hailuo", "credits", "hailuo"),
        ("faceswap", "face-swap", "Qubico/image-toolkit", "credits", "faceswap"),
        ("Qubico/image-toolkit", "background-remove", "Qubico/image-toolkit", "credits", "image-toolkit"),
    ],
)
def test_resolve(
    catalogue: Catalogue, alias: str, task_type: str, model: str, unit: str, provider: str
) -> None:
    spec = catalogue.resolve(alias, task_type)
    assert (spec.model, spec.task_type, spec.unit, spec.provider_model) == (model, task_type, unit, provider)
    if spec.model != "midjourney":
        assert spec.modes == () and spec.default_mode == "fast"
        assert not spec.relax_counted and not spec.counts_for_relax_bonus
