"""B8 prompt checker: whole words, any case; phrases with any whitespace."""

from __future__ import annotations

import pytest

from taskgate.catalogue.prompt_check import PromptChecker, parse_banned_words
from taskgate.catalogue.spec import Catalogue


@pytest.mark.parametrize(
    ("prompt", "found"),
    [
        ("a nude statue in a museum", "nude"),
        ("A NUDE statue", "nude"),
        ("Gore, everywhere", "gore"),
        ("(gore)", "gore"),
        ("scene--torture!", "torture"),
        ("explicit   sex scene", "explicit sex"),
        ("explicit\nSEX", "explicit sex"),
        ("nsfw", "nsfw"),
    ],
)
def test_hits(catalogue: Catalogue, prompt: str, found: str) -> None:
    assert catalogue.check_prompt({"prompt": prompt}) == found


@pytest.mark.parametrize(
    "prompt",
    [
        "a nudes collection",  # whole words only
        "Al Gore giving a speech".replace("Gore", "Gorey"),
        "a gorgeous sunset",
        "pornography",  # a longer word is not the listed word
        "explicit instructions",
        "",
    ],
)
def test_misses(catalogue: Catalogue, prompt: str) -> None:
    assert catalogue.check_prompt({"prompt": prompt}) is None


def test_no_prompt_field(catalogue: Catalogue) -> None:
    assert catalogue.check_prompt({"image_url": "https://x.example/nude.png"}) is None
    assert catalogue.check_prompt({"prompt": None}) is None


def test_longest_phrase_wins_and_words_are_escaped() -> None:
    checker = PromptChecker(["sex", "explicit sex", "c++", "  "])
    assert checker.words == ("explicit sex", "c++", "sex")
    assert checker.find("some explicit sex here") == "explicit sex"
    assert checker.find("writing c++ code") == "c++"
    assert checker.find("writing c code") is None
    assert PromptChecker([]).find("anything") is None


def test_parse_banned_words() -> None:
    assert parse_banned_words('words = ["a", "b c"]', "x") == ("a", "b c")
    with pytest.raises(ValueError, match="bad.toml"):
        parse_banned_words("words = [1]", "bad.toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_banned_words("words = [", "bad.toml")
