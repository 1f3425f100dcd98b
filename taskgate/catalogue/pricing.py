"""Price rules as the catalogue stores them, and the base pay-per-use price of one task.

A rule is one of three schemes (the catalogue's ``price = ...`` entry):

- ``flat``: one amount (written ``price = 7``);
- ``table``: an amount per combination of input values (``by`` fields, joined with ``/``); the derived
  dimension ``size_class`` is the smallest of ``size_classes`` whose square holds the input picture; a
  ``*`` in a key matches any value (the most specific matching key wins);
- ``midjourney``: seed 003's Midjourney table, by mode (lane), version class and endpoint type, plus the
  special upscalers of its note 6.

Relax doubling past the daily limit (B5) is applied atomically at freeze time, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskgate.catalogue.inputs import image_pixels
from taskgate.errors import InvalidInput
from taskgate.models import Lane

SIZE_CLASS = "size_class"
WILDCARD = "*"  # a table key part that matches any value of its dimension
_VERSION_FLAG = re.compile(r"--(?:version|v)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_NIJI_FLAG = re.compile(r"--niji(?:\s+(\d+(?:\.\d+)?))?(?![\w.])", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class VersionClass(StrEnum):
    V5 = "v5"  # Midjourney V5.2 and below
    V6 = "v6"  # V6 and above


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlatPrice(_Rule):
    scheme: Literal["flat"] = "flat"
    amount: int = Field(ge=0)


class TablePrice(_Rule):
    scheme: Literal["table"]
    by: tuple[str, ...] = Field(min_length=1)
    table: dict[str, Annotated[int, Field(ge=0)]] = Field(min_length=1)
    default: dict[str, str] = Field(default_factory=dict)
    size_classes: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TablePrice:
        for key in self.table:
            if len(key.split("/")) != len(self.by):
                raise ValueError(f"table key {key!r} needs {len(self.by)} '/'-separated values for {self.by}")
        if (SIZE_CLASS in self.by) != bool(self.size_classes):
            raise ValueError("size_classes goes with a 'size_class' entry in by, and only then")
        return self


class MidjourneyPrice(_Rule):
    scheme: Literal["midjourney"]
    endpoint_type: int = Field(ge=0, le=3)
    special_upscalers: bool = False


PriceRule = Annotated[FlatPrice | TablePrice | MidjourneyPrice, Field(discriminator="scheme")]


class SpecialUpscaler(_Rule):
    """Either an amount per mode, or "the same as <version class> endpoint type <n>" (seed 003 note 6)."""

    relax: int | None = None
    fast: int | None = None
    turbo: int | None = None
    same_as: VersionClass | None = None
    endpoint_type: int | None = Field(None, ge=0, le=3)

    @model_validator(mode="after")
    def _one_form(self) -> SpecialUpscaler:
        per_mode = [self.relax, self.fast, self.turbo]
        if self.same_as is None and None in per_mode:
            raise ValueError("give relax, fast and turbo amounts, or same_as and endpoint_type")
        if self.same_as is not None and self.endpoint_type is None:
            raise ValueError("same_as needs an endpoint_type")
        return self


class MidjourneyTable(_Rule):
    v6_from: float = 6.0
    default_version: VersionClass = VersionClass.V6
    modes: dict[Lane, dict[VersionClass, tuple[int, int, int, int]]]
    special_upscalers: dict[str, SpecialUpscaler] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> MidjourneyTable:
        for lane in Lane:
            missing = set(VersionClass) - set(self.modes.get(lane, {}))
            if missing:
                raise ValueError(f"modes.{lane} lacks version classes {sorted(missing)}")
        return self

    def amount(self, lane: Lane, version: VersionClass, endpoint_type: int) -> int:
        return self.modes[lane][version][endpoint_type]


def compute(
    rule: FlatPrice | TablePrice | MidjourneyPrice,
    data: Mapping[str, Any],
    lane: Lane,
    mj: MidjourneyTable | None,
) -> int:
    """The base price of a task with input ``data`` running in ``lane``."""
    match rule:
        case FlatPrice():
            return rule.amount
        case TablePrice():
            return _table_price(rule, data)
        case MidjourneyPrice():
            if mj is None:
                raise ValueError("a midjourney price rule needs [pricing.midjourney]")
            return _midjourney_price(rule, data, lane, mj)


def _table_price(rule: TablePrice, data: Mapping[str, Any]) -> int:
    values = [_dimension(rule, name, data) for name in rule.by]
    amount = _lookup(rule.table, values)
    if amount is not None:
        return amount
    for position, (name, value) in enumerate(zip(rule.by, values, strict=True)):
        known = sorted({key.split("/")[position] for key in rule.table} - {WILDCARD})
        if value not in known and not any(key.split("/")[position] == WILDCARD for key in rule.table):
            field = "image_size" if name == SIZE_CLASS else name
            raise InvalidInput(f"input.{field}", f"no price for {name} {value!r}; priced: {', '.join(known)}")
    combination = ", ".join(f"{n}={v}" for n, v in zip(rule.by, values, strict=True))
    raise InvalidInput(f"input.{rule.by[-1]}", f"no price for the combination {combination}")


def _lookup(table: Mapping[str, int], values: list[str]) -> int | None:
    """The amount of the most specific key matching ``values``; a ``*`` in a key matches any value
    (for example ``"t2v-01/*"``: one price whatever the duration). Earlier dimensions weigh more."""
    best: tuple[tuple[bool, ...], int] | None = None
    for key, amount in table.items():
        parts = key.split("/")
        if all(part in (WILDCARD, value) for part, value in zip(parts, values, strict=True)):
            rank = tuple(part != WILDCARD for part in parts)
            if best is None or rank > best[0]:
                best = (rank, amount)
    return best[1] if best is not None else None


def _dimension(rule: TablePrice, name: str, data: Mapping[str, Any]) -> str:
    if name == SIZE_CLASS:
        return str(size_class(image_pixels(dict(data)), rule.size_classes))
    value = data.get(name)
    if value is None:
        value = rule.default.get(name, "")
    return str(value)


def size_class(pixels: int | None, classes: tuple[int, ...]) -> int:
    """The smallest class whose square holds ``pixels``; unknown size -> the smallest class."""
    ordered = sorted(classes)
    if pixels is None:
        return ordered[0]
    for side in ordered:
        if pixels <= side * side:
            return side
    raise InvalidInput("input.image_size", f"images over {ordered[-1]}x{ordered[-1]} pixels are not priced")


def _midjourney_price(rule: MidjourneyPrice, data: Mapping[str, Any], lane: Lane, mj: MidjourneyTable) -> int:
    index = str(data.get("index", ""))
    if rule.special_upscalers and index in mj.special_upscalers:
        special = mj.special_upscalers[index]
        if special.same_as is not None and special.endpoint_type is not None:
            return mj.amount(lane, special.same_as, special.endpoint_type)
        per_mode = {Lane.RELAX: special.relax, Lane.FAST: special.fast, Lane.TURBO: special.turbo}[lane]
        assert per_mode is not None  # checked when the table was loaded
        return per_mode
    return mj.amount(lane, mj_version_class(data, mj), rule.endpoint_type)


def mj_version_class(data: Mapping[str, Any], mj: MidjourneyTable) -> VersionClass:
    """Version class from ``--v``/``--version``/``--niji`` in the prompt, else ``input.version``, else
    the table's default."""
    version = _prompt_version(str(data.get("prompt") or ""))
    if version is None and data.get("version") not in (None, ""):
        match = _NUMBER.search(str(data["version"]))
        version = float(match[0]) if match else None
    if version is None:
        return mj.default_version
    return VersionClass.V6 if version >= mj.v6_from else VersionClass.V5


def _prompt_version(prompt: str) -> float | None:
    flags = [(m.start(), m[1]) for m in _VERSION_FLAG.finditer(prompt)]
    flags += [(m.start(), m[1]) for m in _NIJI_FLAG.finditer(prompt)]
    if not flags:
        return None
    _, number = max(flags)  # Midjourney honours the last flag given
    return float(number) if number else None
