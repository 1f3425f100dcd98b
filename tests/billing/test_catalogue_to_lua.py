"""One source for B7 (docs/rules.md#b7): the conversion figures reach Lua from the catalogue.

The scripts are loaded with a catalogue whose [auto_convert] figures differ from the packaged ones;
the freeze must follow the loaded figures, so a Lua copy of the packaged figures would fail here."""

from __future__ import annotations

from importlib import resources

import pytest

from taskgate.catalogue.spec import Catalogue
from taskgate.store.scripts import Scripts, with_catalogue
from tests.factories import CATALOGUE, enqueue, make_user, wallet

PACKAGED = resources.files("taskgate").joinpath("data", "catalogue.toml").read_text("utf-8")


def modified(below: int, attempts: list[int]) -> Catalogue:
    rule = CATALOGUE.auto_convert["mj_quota"]
    old = f"below = {rule.below}\nattempts = [{', '.join(str(a) for a in rule.attempts)}]"
    assert old in PACKAGED, "the packaged [auto_convert.mj_quota] section changed shape"
    return Catalogue.from_toml(PACKAGED.replace(old, f"below = {below}\nattempts = {attempts}"))


async def test_lua_converts_with_the_loaded_catalogue(redis, keys):
    scripts = Scripts(redis, modified(below=40, attempts=[1400]))
    # 50 mj_quota: under the packaged threshold, not under 40 -> no conversion
    rich = await make_user(redis, scripts, keys, wallets={"credits": 3000, "mj_quota": 50})
    await enqueue(scripts, keys, rich, price=14)
    assert (await wallet(redis, keys, rich, "credits"))["converted_out"] == 0
    # 30 mj_quota: under 40 -> the one configured step, 1400 credits -> 400 quota
    low = await make_user(redis, scripts, keys, wallets={"credits": 3000, "mj_quota": 30})
    await enqueue(scripts, keys, low, price=14)
    c, q = await wallet(redis, keys, low, "credits"), await wallet(redis, keys, low, "mj_quota")
    assert c["converted_out"] == 1400 and c["available"] == 1600
    assert q["converted_in"] == 1400 * CATALOGUE.per_usd["mj_quota"] // CATALOGUE.per_usd["credits"]


async def test_packaged_catalogue_steps(redis, scripts, keys):
    """The default scripts use the packaged figures: the first affordable step of ``attempts``."""
    rule = CATALOGUE.auto_convert["mj_quota"]
    for step in rule.attempts:
        user = await make_user(redis, scripts, keys, wallets={"credits": step, "mj_quota": rule.below - 1})
        await enqueue(scripts, keys, user, price=rule.below)
        c = await wallet(redis, keys, user, "credits")
        assert c["converted_out"] == step and c["available"] == 0
        assert (await wallet(redis, keys, user, "mj_quota"))["converted_in"] == rule.converted(step)


def test_every_script_runs_with_the_catalogue_compiled_in(redis):
    scripts = Scripts(redis)
    for name, src in scripts.sources.items():
        assert "--- @catalogue" not in src.text, name
    assert "attempts = {" in scripts.sources["create_task"].text


def test_unknown_catalogue_section_is_refused():
    with pytest.raises(ValueError, match="unknown catalogue section 'prices'"):
        with_catalogue("--- @catalogue prices\n", CATALOGUE)
