"""The ``@typed`` registry of the script layer and the helpers its functions share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class TypedScript:
    name: str
    function: Callable[..., Awaitable[Any]]
    key_args: tuple[str, ...]  # parameters that build KEYS only (never sent as ARGV)


TYPED: dict[str, TypedScript] = {}


def typed(name: str, *, key_args: tuple[str, ...] = ()) -> Callable[[F], F]:
    def register(function: F) -> F:
        if name in TYPED:
            raise ValueError(f"two typed functions for {name}")
        TYPED[name] = TypedScript(name, function, key_args)
        return function

    return register


def now_arg(now: int | None) -> int | str:
    return now or ""


def flag(value: bool) -> str:
    return "1" if value else "0"


def flat_dict(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply from a script (``Scripts.call`` decodes text) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
