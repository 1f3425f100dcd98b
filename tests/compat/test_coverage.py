"""The suite covers the catalogue: every model and every task type of the packaged catalogue appears in a
compat test file's request bodies (so a family added to the catalogue without a round trip fails here)."""

from __future__ import annotations

from pathlib import Path

from taskgate.catalogue.spec import Catalogue

HERE = Path(__file__).parent


def test_every_catalogue_pair_has_a_round_trip() -> None:
    sources = "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    catalogue = Catalogue.load()
    missing = []
    for model in catalogue.models():
        for task_type in catalogue.task_types(model):
            if f'"{model}"' not in sources or f'"{task_type}"' not in sources:
                missing.append(f"{model} {task_type}")
    assert not missing, f"no compat round trip for: {', '.join(missing)}"
