"""The catalogue: plans, wallet units, models, task types, modes and prices, read from TOML data.

The packaged ``taskgate/data/catalogue.toml`` (and ``banned_words.toml``) is the default; an operator
points ``Settings.catalogue_path`` at a file of the same form, or at a directory holding
``catalogue.toml`` and optionally ``banned_words.toml`` (a catalogue without a ``banned_words.toml``
beside it uses the packaged word list). A malformed file raises ``CatalogueError`` naming the file and
the problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from taskgate.catalogue import pricing
from taskgate.catalogue.inputs import INPUT_MODELS, TaskInput, invalid_input_from
from taskgate.catalogue.prompt_check import PromptChecker, parse_banned_words
from taskgate.errors import InvalidInput
from taskgate.models import Lane

CATALOGUE_FILE = "catalogue.toml"
BANNED_WORDS_FILE = "banned_words.toml"
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CatalogueError(Exception):
    """A catalogue or banned-words file that cannot be used (bad TOML, wrong schema, dangling names)."""


class Feature(StrEnum):
    TASK_PROGRESS = "task_progress"
    SKIP_PROMPT_CHECK = "skip_prompt_check"
    BOT_ID = "bot_id"
    AUTO_FAILOVER = "auto_failover"
    ACCOUNT_NOTIFICATIONS = "account_notifications"


class IncorrectPenalty(StrEnum):
    """B6: what happens past the day's incorrect-task limit (seed 000)."""

    BLOCK = "block"  # no more PPU tasks that day (free)
    NO_REFUND = "no_refund"  # frozen credits of further incorrect tasks are kept (paid plans)


@dataclass(frozen=True, slots=True)
class PlanSpec:
    name: str
    concurrency: int
    relax_daily: int
    incorrect_daily: int
    retention_s: int
    features: frozenset[str]
    incorrect_penalty: IncorrectPenalty = IncorrectPenalty.NO_REFUND

    @property
    def free_incorrect_blocks(self) -> bool:
        """B6: past the incorrect-task limit, further PPU creates are blocked (else: not refunded)."""
        return self.incorrect_penalty is IncorrectPenalty.BLOCK

    def has(self, feature: Feature) -> bool:
        return feature in self.features


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One (model, task type). ``modes`` is empty for models without modes (their ``default_mode`` is
    ``fast``, the lane they run in)."""

    model: str
    task_type: str
    unit: str
    modes: tuple[str, ...]
    default_mode: str
    counts_for_relax_bonus: bool
    relax_counted: bool
    provider_model: str


@dataclass(frozen=True, slots=True)
class Priced:
    unit: str
    amount: int
    lane: Lane


@dataclass(frozen=True, slots=True)
class AutoConvert:
    """B7: when ``unit`` falls under ``below``, buy some with the first of ``attempts`` (amounts of
    ``from_unit``) that the wallet holds."""

    unit: str
    from_unit: str
    below: int
    attempts: tuple[int, ...]
    units_per_from: tuple[int, int]  # (unit per_usd, from_unit per_usd): n from_unit buy n*a//b unit

    def converted(self, amount_from: int) -> int:
        return amount_from * self.units_per_from[0] // self.units_per_from[1]


# --- the TOML schema ----------------------------------------------------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _UnitDoc(_Doc):
    per_usd: int = Field(gt=0)


class _AutoConvertDoc(_Doc):
    from_unit: str
    below: int = Field(ge=0)
    attempts: tuple[int, ...] = Field(min_length=1)


def _seconds(value: object) -> object:
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a duration such as 48h or 7d")
    return int(match[1]) * _SECONDS[match[2]]


class _PlanDoc(_Doc):
    aliases: tuple[str, ...] = ()
    concurrency: int = Field(ge=1)
    relax_daily: int = Field(ge=0)
    incorrect_daily: int = Field(ge=0)
    incorrect_penalty: IncorrectPenalty
    retention: Annotated[int, BeforeValidator(_seconds)]  # seconds, written "48h", "7d", ...
    features: frozenset[Feature] = frozenset()


def _flat_price(value: object) -> object:
    """``price = 7`` is short for ``price = {scheme = "flat", amount = 7}``."""
    return {"scheme": "flat", "amount": value} if isinstance(value, int) else value


class _TaskDoc(_Doc):
    input: str
    price: Annotated[pricing.PriceRule, BeforeValidator(_flat_price)]
    unit: str | None = None
    provider_model: str | None = None
    counts_for_relax_bonus: bool = False
    relax_counted: bool | None = None

    @field_validator("input")
    @classmethod
    def _known_input(cls, value: str) -> str:
        if value not in INPUT_MODELS:
            raise ValueError(f"unknown input schema {value!r}; known: {', '.join(sorted(INPUT_MODELS))}")
        return value


class _ModelDoc(_Doc):
    provider_model: str
    unit: str
    aliases: tuple[str, ...] = ()
    modes: tuple[Lane, ...] = ()
    default_mode: Lane = Lane.FAST
    mode_field: str = "process_mode"
    relax_counted: bool = False
    tasks: dict[str, _TaskDoc] = Field(min_length=1)


class _PricingDoc(_Doc):
    midjourney: pricing.MidjourneyTable | None = None


class _CatalogueDoc(_Doc):
    schema_version: int = Field(ge=1, le=1)
    units: dict[str, _UnitDoc] = Field(min_length=1)
    auto_convert: dict[str, _AutoConvertDoc] = Field(default_factory=dict)
    plans: dict[str, _PlanDoc] = Field(min_length=1)
    pricing: _PricingDoc = Field(default_factory=_PricingDoc)
    models: dict[str, _ModelDoc] = Field(min_length=1)


# --- the catalogue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    spec: TaskSpec
    input_model: type[TaskInput]
    rule: pricing.FlatPrice | pricing.TablePrice | pricing.MidjourneyPrice
    mode_field: str


class Catalogue:
    """Lookups over the loaded data. Immutable once built; share one per process."""

    def __init__(self, doc: _CatalogueDoc, banned_words: tuple[str, ...]) -> None:
        self.units: tuple[str, ...] = tuple(doc.units)
        self.per_usd: Mapping[str, int] = MappingProxyType({u: d.per_usd for u, d in doc.units.items()})
        self.plans: Mapping[str, PlanSpec] = MappingProxyType(
            {name: _plan_spec(name, plan) for name, plan in doc.plans.items()}
        )
        self.auto_convert: Mapping[str, AutoConvert] = MappingProxyType(
            {unit: _auto_convert(unit, conv, doc) for unit, conv in doc.auto_convert.items()}
        )
        self.midjourney: pricing.MidjourneyTable | None = doc.pricing.midjourney
        self.prompt_checker = PromptChecker(banned_words)
        self._plan_names = _alias_index({n: (n, *p.aliases) for n, p in doc.plans.items()}, "plan")
        self._model_names = _alias_index({n: (n, *m.aliases) for n, m in doc.models.items()}, "model")
        self._entries: dict[tuple[str, str], _Entry] = {
            (model, task): _build_entry(model, m, task, t)
            for model, m in doc.models.items()
            for task, t in m.tasks.items()
        }
        self._tasks_by_model = {model: tuple(m.tasks) for model, m in doc.models.items()}
        self._families_by_model: dict[str, tuple[str, ...]] = {
            model: tuple(
                dict.fromkeys(
                    [m.provider_model, *(t.provider_model for t in m.tasks.values() if t.provider_model)]
                )
            )
            for model, m in doc.models.items()
        }
        self.account_families: frozenset[str] = frozenset(
            f for families in self._families_by_model.values() for f in families
        )

    # --- loading --------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """The catalogue at ``path`` (a file, or a directory with ``catalogue.toml``); ``None``: packaged."""
        packaged = resources.files("taskgate").joinpath("data")
        if path is None:
            text, source = packaged.joinpath(CATALOGUE_FILE).read_text("utf-8"), "<packaged catalogue>"
            words_text = packaged.joinpath(BANNED_WORDS_FILE).read_text("utf-8")
            words_source = f"<packaged {BANNED_WORDS_FILE}>"
        else:
            file = path / CATALOGUE_FILE if path.is_dir() else path
            text, source = _read(file), str(file)
            words_file = file.parent / BANNED_WORDS_FILE
            if words_file.is_file():
                words_text, words_source = _read(words_file), str(words_file)
            else:
                words_text = packaged.joinpath(BANNED_WORDS_FILE).read_text("utf-8")
                words_source = f"<packaged {BANNED_WORDS_FILE}>"
        try:
            words = parse_banned_words(words_text, words_source)
        except ValueError as e:
            raise CatalogueError(str(e)) from e
        return cls.from_toml(text, source, words)

    @classmethod
    def from_toml(
        cls, text: str, source: str = "<catalogue>", banned_words: tuple[str, ...] = ()
    ) -> Catalogue:
        """A catalogue from TOML text; ``source`` names it in errors."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise CatalogueError(f"{source}: not valid TOML: {e}") from e
        try:
            doc = _CatalogueDoc.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise CatalogueError(f"{source}: {where}: {first['msg']} ({e.error_count()} problem(s))") from e
        _check_references(doc, source)
        try:
            return cls(doc, banned_words)
        except ValueError as e:
            raise CatalogueError(f"{source}: {e}") from e

    # --- lookups --------------------------------------------------------------------------------------

    def plan(self, name: str) -> PlanSpec:
        canonical = self._plan_names.get(name.strip().lower())
        if canonical is None:
            raise InvalidInput("plan", f"unknown plan {name!r}; known: {', '.join(self.plans)}")
        return self.plans[canonical]

    def resolve(self, model: str, task_type: str) -> TaskSpec:
        canonical = self._model_names.get(model.strip().lower())
        if canonical is None:
            known = ", ".join(self._tasks_by_model)
            raise InvalidInput("model", f"unknown model {model!r}; known: {known}")
        entry = self._entries.get((canonical, task_type.strip().lower()))
        if entry is None:
            known = ", ".join(self._tasks_by_model[canonical])
            reason = f"unknown task_type {task_type!r} for {canonical}; known: {known}"
            raise InvalidInput("task_type", reason)
        return entry.spec

    def account_models(self, names: Sequence[str]) -> list[str]:
        """The model families an account serves, from families (``midjourney``, ``flux``, ...) or any
        model name or alias of the catalogue (``mj``, ``Qubico/flux1-schnell``); an unknown name is
        ``InvalidInput("models", ...)`` rather than an account that silently serves nothing."""
        out: list[str] = []
        for name in names:
            key = name.strip().lower()
            if key in self.account_families:
                families: tuple[str, ...] = (key,)
            elif key in self._model_names:
                families = self._families_by_model[self._model_names[key]]
            else:
                known = ", ".join(sorted(self.account_families))
                raise InvalidInput(
                    "models", f"unknown model {name!r}: give a model name or alias, or a family ({known})"
                )
            out.extend(f for f in families if f not in out)
        return out

    def models(self) -> tuple[str, ...]:
        return tuple(self._tasks_by_model)

    def task_types(self, model: str) -> tuple[str, ...]:
        return self._tasks_by_model[model]

    def validate_input(self, spec: TaskSpec, raw: dict[str, Any]) -> dict[str, Any]:
        """The normalised input, or ``InvalidInput("input.<field>", why)`` for the first problem."""
        if not isinstance(raw, dict):
            raise InvalidInput("input", "must be a JSON object")
        model = self._entry(spec).input_model
        try:
            parsed = model.model_validate(raw)
        except ValidationError as e:
            raise invalid_input_from(e) from e
        return parsed.model_dump(mode="json", exclude_none=True)

    def lane(self, spec: TaskSpec, input: Mapping[str, Any]) -> Lane:
        if not spec.modes:
            return Lane.FAST
        field = self._entry(spec).mode_field
        value = input.get(field) or spec.default_mode
        mode = value.strip().lower() if isinstance(value, str) else value
        if mode not in spec.modes:
            raise InvalidInput(f"input.{field}", f"must be one of {', '.join(spec.modes)}")
        return Lane(mode)

    def price(self, spec: TaskSpec, input: Mapping[str, Any], plan: PlanSpec) -> Priced:
        """The PPU base price (the same on every plan in seed 003's tables; ``plan`` is for rules that
        differ by plan). BYOA tasks are free and the relax doubling (B5) comes later, at freeze time."""
        lane = self.lane(spec, input)
        amount = pricing.compute(self._entry(spec).rule, input, lane, self.midjourney)
        return Priced(unit=spec.unit, amount=amount, lane=lane)

    def check_prompt(self, input: Mapping[str, Any]) -> str | None:
        """B8: the banned word in ``input.prompt`` (case-insensitive, whole words), else ``None``."""
        prompt = input.get("prompt")
        return self.prompt_checker.find(prompt) if isinstance(prompt, str) else None

    def prompt_check_applies(self, plan: PlanSpec, input: Mapping[str, Any]) -> bool:
        """B8: the checker runs unless the plan allows skipping it and the task asks to."""
        return not (plan.has(Feature.SKIP_PROMPT_CHECK) and input.get("skip_prompt_check") is True)

    def _entry(self, spec: TaskSpec) -> _Entry:
        return self._entries[(spec.model, spec.task_type)]


# --- building -----------------------------------------------------------------------------------------


def _read(file: Path) -> str:
    try:
        return file.read_text("utf-8")
    except OSError as e:
        raise CatalogueError(f"{file}: cannot read: {e.strerror or e}") from e


def _plan_spec(name: str, plan: _PlanDoc) -> PlanSpec:
    return PlanSpec(
        name=name,
        concurrency=plan.concurrency,
        relax_daily=plan.relax_daily,
        incorrect_daily=plan.incorrect_daily,
        retention_s=plan.retention,
        features=frozenset(plan.features),
        incorrect_penalty=plan.incorrect_penalty,
    )


def _auto_convert(unit: str, conv: _AutoConvertDoc, doc: _CatalogueDoc) -> AutoConvert:
    rate = (doc.units[unit].per_usd, doc.units[conv.from_unit].per_usd)
    return AutoConvert(unit, conv.from_unit, conv.below, conv.attempts, rate)


def _build_entry(model: str, m: _ModelDoc, task: str, t: _TaskDoc) -> _Entry:
    modes = tuple(str(mode) for mode in m.modes)
    relax_counted = t.relax_counted if t.relax_counted is not None else m.relax_counted
    spec = TaskSpec(
        model=model,
        task_type=task,
        unit=t.unit or m.unit,
        modes=modes,
        default_mode=str(m.default_mode),
        counts_for_relax_bonus=t.counts_for_relax_bonus,
        relax_counted=relax_counted and Lane.RELAX in m.modes,
        provider_model=t.provider_model or m.provider_model,
    )
    return _Entry(spec, INPUT_MODELS[t.input], t.price, m.mode_field)


def _alias_index(names: Mapping[str, tuple[str, ...]], what: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for canonical, spellings in names.items():
        for spelling in spellings:
            key = spelling.strip().lower()
            if index.get(key, canonical) != canonical:
                raise ValueError(f"{what} name {spelling!r} is used by both {index[key]} and {canonical}")
            index[key] = canonical
    return index


def _check_references(doc: _CatalogueDoc, source: str) -> None:
    """Names that must point at something defined elsewhere in the file."""
    problems: list[str] = []
    for unit, conv in doc.auto_convert.items():
        unknown = [u for u in (unit, conv.from_unit) if u not in doc.units]
        problems += [f"auto_convert.{unit}: unknown unit {u!r}" for u in unknown]
    for name, m in doc.models.items():
        if m.modes and m.default_mode not in m.modes:
            problems.append(f"models.{name}: default_mode {m.default_mode} is not one of its modes")
        for task, t in m.tasks.items():
            where = f"models.{name}.tasks.{task}"
            if (t.unit or m.unit) not in doc.units:
                problems.append(f"{where}: unknown unit {t.unit or m.unit!r}")
            if isinstance(t.price, pricing.MidjourneyPrice) and doc.pricing.midjourney is None:
                problems.append(f"{where}: a midjourney price needs [pricing.midjourney]")
            if isinstance(t.price, pricing.MidjourneyPrice) and not m.modes:
                problems.append(f"{where}: a midjourney price needs the model's modes")
    if problems:
        raise CatalogueError(f"{source}: " + "; ".join(problems))
