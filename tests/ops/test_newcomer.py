"""The three S10 liveness cases, tried as a new user would: `taskgate dev` as a real process (on a simulator
port other than 8010), the README's `taskgate admin` forms in another process, and the HTTP API.
Every task must end `completed`, or `failed` with a clear message and its frozen amount refunded.
The README's runnable `taskgate admin` examples are run exactly as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.test_devserver import DevProcess, dev_env

pytestmark = pytest.mark.slow  # real processes: `taskgate dev` and a CLI process per admin step

README = Path(__file__).resolve().parents[2] / "README.md"
END_BOUND_S = 90.0  # generous for a loaded machine; a bound on liveness, not a timing assertion
_SCRIPT = Path(sys.executable).parent / "taskgate"
TASKGATE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "taskgate"]


def taskgate(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([*TASKGATE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"taskgate {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)


def http(url: str, method: str = "GET", key: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if key:
        headers["x-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, _body(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


class Newcomer:
    """One shell running `taskgate dev --port P --sim-port S`, another running the admin CLI."""

    def __init__(self, dev: DevProcess, cli_env: dict[str, str]) -> None:
        self.dev, self.cli_env = dev, cli_env
        self.api = f"http://127.0.0.1:{dev.api_port}"
        self.sim = f"http://127.0.0.1:{dev.sim_port}"

    def admin(self, *args: str) -> Any:
        return taskgate(self.cli_env, "admin", *args)

    def customer(self) -> str:
        user = self.admin("users", "create", "--plan", "developer", "--mj-quota", "500", "--json")
        return str(user["api_key"])

    def imagine(self, key: str, prompt: str, mode: str = "fast") -> str:
        status, body = http(
            self.api + "/api/v1/task",
            "POST",
            key,
            {
                "model": "midjourney",
                "task_type": "imagine",
                "input": {"prompt": prompt, "process_mode": mode},
            },
        )
        assert status == 200 and body["code"] == 200, body
        return str(body["data"]["task_id"])

    def task(self, key: str, task_id: str) -> dict[str, Any]:
        status, body = http(f"{self.api}/api/v1/task/{task_id}", key=key)
        assert status == 200, body
        return dict(body["data"])

    def wait(self, key: str, task_id: str, until: Any) -> dict[str, Any]:
        deadline = time.monotonic() + END_BOUND_S
        while time.monotonic() < deadline:
            data = self.task(key, task_id)
            if until(data):
                return data
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} stuck: {self.task(key, task_id)}\n{self.dev.output[-3000:]}")

    def final(self, key: str, task_id: str) -> dict[str, Any]:
        return self.wait(key, task_id, lambda d: d["status"] in ("completed", "failed"))

    def wallet(self, key: str) -> dict[str, int]:
        status, body = http(self.api + "/api/v1/account", key=key)
        assert status == 200, body
        return dict(body["data"]["wallets"]["mj_quota"])


@pytest.fixture
def newcomer_for(tmp_path: Path, redis_url: str, prefix: str, redis: object) -> Iterator[Any]:
    started: list[DevProcess] = []

    def start(**settings: str) -> Newcomer:
        dev = DevProcess(dev_env(redis_url, prefix, **settings), tmp_path / f"dev-{len(started)}.log")
        started.append(dev)
        dev.wait_healthy()
        return Newcomer(dev, dev_env(redis_url, prefix))  # the CLI shell knows only Redis (and the prefix)

    yield start
    for dev in started:
        dev.kill()


def test_case_1_the_documented_set_up_works_and_rejected_keys_are_not_bans(newcomer_for: Any) -> None:
    me = newcomer_for(TASKGATE_COOLDOWN_BASE_MS="1000")
    assert me.dev.sim_port != 8010
    key, account = run_readme_admin_examples(me)
    shown = me.admin("accounts", "show", account["account_id"], "--json")
    assert (shown["state"], shown["base_url"]) == ("active", "")  # the deployment's simulator
    done = me.final(key, me.imagine(key, "a lighthouse at dawn [sim duration=0.2]"))
    assert done["status"] == "completed", done
    assert done["meta"]["started_at"] and done["meta"]["attempt"] == 1 and done["detail"] is None
    assert me.wallet(key)["frozen"] == 0

    # the upstream stops accepting the key: the account is disabled with that reason, not banned
    sim_key = f"sim-{account['account_id']}"  # the documented default key of a sim account
    assert http(f"{me.sim}/sim/accounts/{sim_key}", "POST", body={"key_rejected": True})[0] == 200
    stuck = me.imagine(key, "a harbour [sim duration=0.2]")
    waiting = me.wait(key, stuck, lambda d: d["detail"] == "no_account_serves_model_mode")
    assert waiting["status"] == "pending" and waiting["meta"]["wait_reason"] == waiting["detail"]
    pool = me.admin("pool", "--json")
    [disabled] = pool["not_active"]["disabled"]
    assert (disabled["account_id"], disabled["reason"]) == (account["account_id"], "credentials_rejected")
    assert pool["pending_by_reason"]["no_account_serves_model_mode"] == 1
    status, metrics = http(me.api + "/metrics")
    assert status == 200
    reason = r'taskgate_pending_tasks_by_reason\{reason="no_account_serves_model_mode"\} 1\.0'
    assert re.search(reason, metrics)
    assert re.search(r'taskgate_pending_oldest_age_seconds\{lane="fast"\} (?:[1-9]|0\.\d*[1-9])', metrics)
    # another account appears: the task moves there, charged once
    me.admin("accounts", "add", "--owner", "shared", "--provider", "sim", "--capacity", "2", "--json")
    moved = me.final(key, stuck)
    assert moved["status"] == "completed" and moved["meta"]["attempt"] == 2, moved
    assert moved["meta"]["usage"]["consume"] == moved["meta"]["usage"]["frozen"] > 0
    # the operator fixes the key: the account is back, and runs work with the new key
    fixed = me.admin("accounts", "update", account["account_id"], "--api-key", "the-fixed-key", "--json")
    assert (fixed["state"], fixed["state_reason"]) == ("active", "credentials updated")
    w = me.wallet(key)
    assert w["frozen"] == 0 and w["available"] + w["consumed"] == 500


def test_case_2_a_transient_failure_on_the_only_account_ends_and_blocks_nothing(newcomer_for: Any) -> None:
    me = newcomer_for(TASKGATE_COOLDOWN_BASE_MS="1000")
    key = me.customer()
    me.admin("accounts", "add", "--owner", "shared", "--provider", "sim", "--capacity", "10", "--json")
    flaky = me.imagine(key, "a storm [sim duration=0.1 outcome=transient]")
    failed = me.final(key, flaky)
    assert failed["status"] == "failed" and failed["meta"]["attempt"] == 3, failed
    assert failed["error"]["message"] and failed["meta"]["usage"]["consume"] == 0
    later = [me.imagine(key, f"calm sea {i} [sim duration=0.1]") for i in range(3)]
    for task_id in later:
        assert me.final(key, task_id)["status"] == "completed"
    w = me.wallet(key)
    assert w["frozen"] == 0 and w["available"] + w["consumed"] == 500 and w["consumed"] > 0


def test_case_3_no_account_serves_the_model_mode(newcomer_for: Any) -> None:
    me = newcomer_for(TASKGATE_PENDING_MAX_WAIT_MS="3000")
    key = me.customer()
    tasks = [me.imagine(key, f"a cat {i}") for i in range(2)]
    assert me.wallet(key)["frozen"] > 0
    waiting = me.wait(key, tasks[1], lambda d: d["detail"] == "no_account_serves_model_mode")
    assert waiting["meta"]["started_at"] is None and waiting["meta"]["attempt"] == 0
    for task_id in tasks:
        done = me.final(key, task_id)
        assert done["status"] == "failed" and done["meta"]["started_at"] is None
        assert done["error"]["message"].startswith("no account could serve midjourney fast within 3 s")
    w = me.wallet(key)
    assert (w["available"], w["frozen"], w["consumed"]) == (500, 0, 0)
    # an operator pausing the only account is the same case
    account = me.admin(
        "accounts", "add", "--owner", "shared", "--provider", "sim", "--capacity", "1", "--json"
    )
    me.admin("accounts", "pause", account["account_id"], "--json")
    paused = me.final(key, me.imagine(key, "a dog"))
    assert paused["status"] == "failed" and "no account could serve" in paused["error"]["message"]


def readme_admin_examples() -> list[list[str]]:
    """Every `taskgate admin ...` line of README's sh blocks that is runnable as written (no
    placeholders such as `free|developer` or `[--credits N]`)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    runnable = [
        line
        for line in lines
        if line.startswith("taskgate admin ")
        and not re.search(r"[|\[\]]|\b[A-Z]+_ID\b|KEY\b|URL\b|\bN\b", line)
    ]
    return [line.split()[1:] for line in runnable]


def run_readme_admin_examples(me: Newcomer) -> tuple[str, dict[str, str]]:
    """Runs the README's runnable admin examples exactly as written; returns the customer's key and
    the account they created."""
    examples = readme_admin_examples()
    forms = {" ".join(args[:3]) for args in examples}
    assert {"admin users create", "admin accounts add"} <= forms, examples
    key, account = "", {}
    for args in examples:
        out = taskgate(me.cli_env, *args)
        if args[1:3] == ["users", "create"]:
            assert set(out) == {"user_id", "api_key"} and out["api_key"].startswith("tg_")
            key = out["api_key"]
        if args[1:3] == ["accounts", "add"]:
            assert set(out) == {"account_id"}
            account = out
    return key, account


def test_compose_sends_sim_accounts_to_the_sim_service() -> None:
    """Inside compose the simulator's host is its service name: every role gets TASKGATE_SIM_BASE_URL
    pointing there (plain text: no YAML parser is a dependency)."""
    text = (README.parent / "deploy" / "docker-compose.yml").read_text()
    shared_env = text.split("x-taskgate-env: &taskgate-env", 1)[1].split("\n\n", 1)[0]
    url = re.search(r"TASKGATE_SIM_BASE_URL: (http://([a-z-]+):(\d+))", shared_env)
    assert url, shared_env
    services = text.split("\nservices:\n", 1)[1]
    sim = services.split(f"\n  {url[2]}:\n", 1)
    assert len(sim) == 2, f"no compose service named {url[2]}"
    assert f'TASKGATE_SIM_PORT: "{url[3]}"' in sim[1].split("\n  volumes:", 1)[0].split("\n\n", 1)[0]
