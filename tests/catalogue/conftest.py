"""One packaged catalogue for the catalogue tests (it is immutable, so sharing it is safe)."""

from __future__ import annotations

import pytest

from taskgate.catalogue.spec import Catalogue


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load()
