from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskgate.sim.directives import Directive, SimOutcome, directive_of, parse_directive


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat [sim duration=0.2 outcome=incorrect]", Directive(0.2, SimOutcome.INCORRECT)),
        ("[sim outcome=banned] a cat", Directive(None, SimOutcome.BANNED)),
        ("[SIM Duration=1.5 OUTCOME=Captcha]", Directive(1.5, SimOutcome.CAPTCHA)),
        ("[sim duration=0]", Directive(0.0, None)),
        ("[sim duration=0.05s outcome=transient]", Directive(0.05, SimOutcome.TRANSIENT)),
        ("[ sim  duration = 2  outcome = completed ]", Directive(2.0, SimOutcome.COMPLETED)),
        ("[sim duration=1] later [sim duration=3 outcome=incorrect]", Directive(3.0, SimOutcome.INCORRECT)),
    ],
)
def test_parses_directives(prompt: str, expected: Directive) -> None:
    assert parse_directive(prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat",
        "",
        "[simulate duration=1]",  # a different word
        "[sim]",
        "[sim colour=red speed=9]",  # unknown keys
        "[sim duration=abc outcome=exploded]",  # bad values
        "[sim duration=-1]",
        "[sim duration=nan]",
        "[sim duration=inf]",
        "[sim duration=99999]",
        "[sim duration=1",  # unclosed
    ],
)
def test_ignores_what_it_does_not_understand(prompt: str) -> None:
    assert parse_directive(prompt) == Directive()


def test_bad_values_keep_good_ones() -> None:
    assert parse_directive("[sim duration=oops outcome=incorrect]") == Directive(None, SimOutcome.INCORRECT)
    assert parse_directive("[sim duration=1 outcome=nope]") == Directive(1.0, None)
    assert parse_directive("[sim duration=1] [sim duration=bad]") == Directive(1.0, None)


@pytest.mark.parametrize("task_input", [None, [], "x", {}, {"prompt": 5}, {"image_url": "http://x/y.png"}])
def test_inputs_without_a_prompt_have_no_directive(task_input: object) -> None:
    assert directive_of(task_input) == Directive()


def test_directive_of_reads_the_prompt() -> None:
    assert directive_of({"prompt": "x [sim outcome=captcha]"}).outcome == SimOutcome.CAPTCHA


@given(st.text())
def test_never_raises_on_arbitrary_text(prompt: str) -> None:
    result = parse_directive(prompt)
    assert result.duration_s is None or 0 <= result.duration_s <= 3600


@given(st.floats(min_value=0, max_value=3600), st.sampled_from(list(SimOutcome)), st.text(alphabet="abc xyz"))
def test_round_trips_embedded_directives(duration: float, outcome: SimOutcome, noise: str) -> None:
    prompt = f"{noise} [sim duration={duration!r} outcome={outcome.value}] {noise}"
    assert parse_directive(prompt) == Directive(duration, outcome)
