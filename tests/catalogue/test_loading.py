"""Loading: the packaged data, an override by path, and clear errors for malformed files."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from taskgate.catalogue.spec import Catalogue, CatalogueError

PACKAGED = resources.files("taskgate").joinpath("data", "catalogue.toml").read_text("utf-8")


def write(directory: Path, text: str, name: str = "catalogue.toml") -> Path:
    path = directory / name
    path.write_text(text, "utf-8")
    return path


def test_packaged_catalogue_loads() -> None:
    catalogue = Catalogue.load()
    assert catalogue.plan("free").concurrency == 3
    assert catalogue.check_prompt({"prompt": "nsfw"}) == "nsfw"


def test_override_file_by_path(tmp_path: Path) -> None:
    text = PACKAGED.replace("concurrency = 3\n", "concurrency = 5\n", 1)
    text = re.sub(
        r'(\[models\."Qubico/flux1-schnell"\.tasks\.txt2img\]\ninput = "flux_txt2img"\nprice = )1',
        r"\g<1>3",
        text,
    )
    catalogue = Catalogue.load(write(tmp_path, text))
    assert catalogue.plan("free").concurrency == 5
    spec = catalogue.resolve("flux", "txt2img")
    assert catalogue.price(spec, {"prompt": "x"}, catalogue.plan("free")).amount == 3
    assert catalogue.check_prompt({"prompt": "gore"}) == "gore"  # packaged words without a local list


def test_override_directory_with_its_own_banned_words(tmp_path: Path) -> None:
    write(tmp_path, PACKAGED)
    write(tmp_path, 'words = ["pineapple pizza"]', "banned_words.toml")
    catalogue = Catalogue.load(tmp_path)
    assert catalogue.check_prompt({"prompt": "Pineapple  pizza, please"}) == "pineapple pizza"
    assert catalogue.check_prompt({"prompt": "gore"}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plans = [", "not valid TOML"),
        (PACKAGED.replace("concurrency = 9", "concurrency = 0"), "plans.developer.concurrency"),
        (PACKAGED.replace("concurrency = 9", "concurency = 9"), "plans.developer"),
        (PACKAGED.replace('retention = "7d"', 'retention = "a week"'), "retention"),
        (PACKAGED.replace('"bot_id", "auto_failover"', '"bot_id", "teleport"'), "features"),
        (PACKAGED.replace('input = "mj_seed"', 'input = "mj_sead"'), "unknown input schema 'mj_sead'"),
        (PACKAGED.replace('unit = "luma_quota"', 'unit = "luma_quotas"'), "unknown unit 'luma_quotas'"),
        (PACKAGED.replace("v6 = [6, 6, 2, 1]", "v6 = [6, 6, 2]"), "pricing.midjourney.modes.relax"),
        (PACKAGED.replace('"2/1024" = 7', '"2" = 7'), "table key '2'"),
        (PACKAGED.replace('aliases = ["suno"]', 'aliases = ["flux"]'), "'flux'"),
        (PACKAGED.replace("schema_version = 1", "schema_version = 2"), "schema_version"),
    ],
)
def test_malformed_file_fails_clearly(tmp_path: Path, text: str, message: str) -> None:
    assert text != PACKAGED or message == "not valid TOML"
    path = write(tmp_path, text)
    with pytest.raises(CatalogueError) as info:
        Catalogue.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        Catalogue.load(tmp_path / "nope.toml")


def test_malformed_banned_words(tmp_path: Path) -> None:
    write(tmp_path, PACKAGED)
    words = write(tmp_path, "words = 'gore'", "banned_words.toml")
    with pytest.raises(CatalogueError, match=re.escape(str(words))):
        Catalogue.load(tmp_path)
