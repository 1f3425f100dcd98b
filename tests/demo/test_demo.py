"""``taskgate demo`` end to end, in this process, against the session's throwaway Redis."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import pytest
from redis import Redis

from taskgate.dev import demo
from tests.redis_server import free_port

pytestmark = pytest.mark.slow  # the whole demo, once for the module


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="taskgate")
    demo.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["demo", *argv])


@pytest.fixture(scope="module")
def summary_and_code(redis_url, tmp_path_factory):
    """One demo run shared by the tests of this module (it takes a few seconds)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("TASKGATE_REDIS_URL", redis_url)
        args = _parse(
            [
                "--tasks",
                "30",
                "--port",
                str(free_port()),
                "--sim-port",
                str(free_port()),
                "--json",
                "--seed",
                "11",
                "--report-dir",
                str(tmp_path_factory.mktemp("demo") / "report"),
            ]
        )
        code = args.func(args)
    return json.loads(out.getvalue().strip().splitlines()[-1]), code


def test_demo_runs_every_task_to_the_end_within_caps_and_ledger(summary_and_code, redis_url):
    summary, code = summary_and_code
    assert summary["problems"] == [] and summary["ok"] is True
    assert code == 0
    assert summary["stuck"] == []
    users = {u["label"]: u for u in summary["users"]}
    assert set(users) == {"free", "developer", "premium", "low-credit", "byoa"}
    for user in users.values():
        assert user["completed"] + user["failed"] == user["submitted"]
        assert user["submitted"] + sum(user["refused"].values()) == user["planned"]
        assert user["peak_concurrency"] <= user["cap"], user
        assert user["ledger_matches"], user["ledger_problems"]
    assert users["free"]["refused"].get("400") == 1  # the prompt checker (B8)
    assert users["low-credit"]["refused"].get("402", 0) > 0  # not enough credits (B1)
    assert users["premium"]["peak_concurrency"] > 0
    assert users["premium"]["units"]["mj_quota"]["charged"] > 0
    assert all(a["peak"] <= a["capacity"] for a in summary["accounts"])
    # leaves nothing behind in a shared Redis
    client = Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match="{" + summary["key_prefix"] + "}*", count=1000)) == []
    finally:
        client.close()


def test_byoa_user_loses_its_account_and_fails_over(summary_and_code):
    summary, _ = summary_and_code
    byoa = next(u for u in summary["users"] if u["label"] == "byoa")
    own = [a for a in summary["accounts"] if a["owner"] == "byoa"]
    assert [a["state"] for a in own] == ["banned"]
    assert byoa["failed_over"] > 0
    assert byoa["peak_concurrency"] <= byoa["cap"]


def test_demo_writes_json_and_html_report(summary_and_code):
    summary, _ = summary_and_code
    with open(summary["report"]["json"], encoding="utf-8") as f:
        on_disk = json.load(f)
    assert on_disk["ok"] is True and len(on_disk["users"]) == 5
    with open(summary["report"]["html"], encoding="utf-8") as f:
        page = f.read()
    assert page.count("<svg") == 2 and "premium" in page
