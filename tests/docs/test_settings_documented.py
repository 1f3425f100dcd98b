"""README's configuration table names every setting (``TASKGATE_<FIELD>``), so none is a secret."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from taskgate.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
NAME_RE = re.compile(r"`(TASKGATE_[A-Z0-9_{},]+)`")


def documented(text: str) -> set[str]:
    """Variable names in backticks, with ``{A,B}`` alternatives expanded."""
    names = set()
    for raw in NAME_RE.findall(text):
        parts = re.split(r"\{([^}]*)\}", raw)  # literal, alternatives, literal, ...
        choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
        names.update("".join(combo) for combo in itertools.product(*choices))
    return names


def test_the_expansion_of_alternatives() -> None:
    assert documented("`TASKGATE_SIM_{A,B}_RATE` and `TASKGATE_X`") == {
        "TASKGATE_SIM_A_RATE",
        "TASKGATE_SIM_B_RATE",
        "TASKGATE_X",
    }


def test_every_setting_is_in_the_readme() -> None:
    names = documented(README.read_text())
    missing = sorted(
        f"TASKGATE_{f.upper()}" for f in Settings.model_fields if f"TASKGATE_{f.upper()}" not in names
    )
    assert not missing, f"README's configuration table lacks {missing}"
