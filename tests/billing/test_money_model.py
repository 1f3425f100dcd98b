"""B1-B7 against a pure-Python model: random creates, dispatches, completions, failures, incorrect
outcomes, cancels, top-ups and day changes on real Redis. After every step, for every user and
unit: deposited + converted_in = available + frozen + consumed + converted_out (B3), Redis matches
the model, and at rest nothing is frozen."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from redis.asyncio import Redis

from taskgate.errors import IncorrectTaskLimit, InsufficientCredits
from taskgate.scheduler.dispatcher import Dispatcher
from taskgate.settings import Settings
from taskgate.store.keys import Keys
from taskgate.store.scripts import Scripts
from tests.factories import CATALOGUE, enqueue, examples, make_account, make_user, wallet

DAY = 86_400_000
T0 = 1_800_000_000_000
UNITS = ("credits", "mj_quota")
FIELDS = ("available", "frozen", "consumed", "deposited", "converted_in", "converted_out")
# The model is written independently of wallet.lua; its figures are the catalogue's data (B7, B6).
CONVERT = CATALOGUE.auto_convert["mj_quota"]


@dataclass
class ModelUser:
    plan: str
    relax_limit: int
    incorrect_limit: int
    penalty: str
    bal: dict[str, dict[str, int]] = field(
        default_factory=lambda: {u: dict.fromkeys(FIELDS, 0) for u in UNITS}
    )
    daily: dict[int, dict[str, int]] = field(default_factory=dict)

    def day(self, d: int) -> dict[str, int]:
        return self.daily.setdefault(d, {"relax_used": 0, "relax_bonus": 0, "incorrect": 0})


@dataclass
class ModelTask:
    user: str
    unit: str
    frozen: int
    bonus: bool
    status: str = "pending"
    attempt: int = 0


class MoneyMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.redis_url)
        self.keys = Keys(f"t:{uuid.uuid4().hex[:12]}")
        self.scripts = Scripts(self.redis)
        self.settings = Settings(redis_url=self.redis_url, key_prefix=self.keys.prefix, lease_ms=10 * DAY)
        self.users: dict[str, ModelUser] = {}
        self.tasks: dict[str, ModelTask] = {}
        self.day = 0
        self.run(make_account(self.scripts, self.keys, capacity=1000))

    def run(self, coro):  # noqa: ANN001, ANN201
        return self.loop.run_until_complete(coro)

    @property
    def now(self) -> int:
        return T0 + self.day * DAY

    def teardown(self) -> None:
        async def clean() -> None:
            async for key in self.redis.scan_iter(match=self.keys.pattern()):
                await self.redis.delete(key)
            await self.redis.aclose()

        self.run(clean())
        self.loop.close()

    # --- rules -----------------------------------------------------------------------------
    @rule(
        plan=st.sampled_from(["free", "developer"]), credits=st.integers(0, 3000), quota=st.integers(0, 300)
    )
    def add_user(self, plan: str, credits: int, quota: int) -> None:
        if len(self.users) >= 3:
            return
        limits = {"relax_limit": 1, "incorrect_limit": 1}
        uid = self.run(
            make_user(
                self.redis,
                self.scripts,
                self.keys,
                plan=plan,
                cap=1000,
                wallets={"credits": credits, "mj_quota": quota},
                **limits,
            )
        )
        m = ModelUser(plan, 1, 1, str(CATALOGUE.plan(plan).incorrect_penalty))
        for unit, amount in (("credits", credits), ("mj_quota", quota)):
            m.bal[unit]["available"] = m.bal[unit]["deposited"] = amount
        self.users[uid] = m

    @precondition(lambda self: self.users)
    @rule(
        data=st.data(),
        lane=st.sampled_from(["relax", "fast", "turbo"]),
        price=st.integers(0, 120),
        unit=st.sampled_from(UNITS),
    )
    def create(self, data: st.DataObject, lane: str, price: int, unit: str) -> None:
        uid = data.draw(st.sampled_from(list(self.users)))
        m, day = self.users[uid], self.users[uid].day(self.day)
        relax = lane == "relax"
        bonus = lane != "relax" and data.draw(st.booleans())
        expected_block = m.penalty == "block" and day["incorrect"] >= m.incorrect_limit
        amount = price * 2 if relax and day["relax_used"] >= m.relax_limit + day["relax_bonus"] else price
        try:
            task_id = self.run(
                enqueue(
                    self.scripts,
                    self.keys,
                    uid,
                    lane=lane,
                    unit=unit,
                    price=price,
                    relax=relax,
                    now=self.now,
                    bonus=bonus,
                )
            )
        except IncorrectTaskLimit:
            assert expected_block
            return
        except InsufficientCredits:
            assert not expected_block
            self._convert(m, unit, amount)  # a refused task converts nothing: check that
            assert m.bal[unit]["available"] < amount
            return
        assert not expected_block
        self._convert(m, unit, amount)
        b = m.bal[unit]
        assert b["available"] >= amount
        b["available"] -= amount
        b["frozen"] += amount
        if relax:
            day["relax_used"] += 1
        self.tasks[task_id] = ModelTask(uid, unit, amount, bonus)

    def _convert(self, m: ModelUser, unit: str, amount: int) -> None:
        """B7 in the model, applied only when the freeze then succeeds: under ``below`` of the unit,
        the first of ``attempts`` the wallet holds buys ``amount * per_usd(unit) // per_usd(from)``."""
        if unit != CONVERT.unit or amount <= 0:
            return
        q, c = m.bal[unit], m.bal[CONVERT.from_unit]
        if q["available"] >= CONVERT.below:
            return
        step = next((a for a in CONVERT.attempts if c["available"] >= a), 0)
        bought = step * CATALOGUE.per_usd[unit] // CATALOGUE.per_usd[CONVERT.from_unit]
        if step == 0 or q["available"] + bought < amount:
            return
        c["available"] -= step
        c["converted_out"] += step
        q["available"] += bought
        q["converted_in"] += bought

    @rule()
    def dispatch(self) -> None:
        for d in self.run(
            Dispatcher(self.redis, self.scripts, self.keys, self.settings).dispatch(100, now_ms=self.now)
        ):
            t = self.tasks[d.task_id]
            assert t.status == "pending"
            t.status, t.attempt = "processing", d.attempt

    @precondition(lambda self: any(t.status == "processing" for t in self.tasks.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["completed", "failed", "incorrect", "cancelled", "retry"]))
    def finish(self, data: st.DataObject, outcome: str) -> None:
        task_id = data.draw(st.sampled_from([k for k, t in self.tasks.items() if t.status == "processing"]))
        t = self.tasks[task_id]
        res = self.run(
            self.scripts.call(
                "finish_task",
                keys=[self.keys.task(task_id), self.keys.task_failed_accounts(task_id)],
                args=[self.keys.base, self.now, task_id, t.attempt, outcome, json.dumps({}), "", 10, "0"],
            )
        )
        if outcome == "retry":
            assert res[1] == "pending"
            t.status = "pending"
            return
        m, b = self.users[t.user], self.users[t.user].bal[t.unit]
        charge = 0
        if outcome == "completed":
            charge = t.frozen
            if t.bonus:
                m.day(self.day)["relax_bonus"] += 1
        elif outcome == "incorrect":
            day = m.day(self.day)
            day["incorrect"] += 1
            if m.penalty == "no_refund" and day["incorrect"] > m.incorrect_limit:
                charge = t.frozen
        b["frozen"] -= t.frozen
        b["consumed"] += charge
        b["available"] += t.frozen - charge
        t.status = "done"

    @precondition(lambda self: any(t.status == "pending" for t in self.tasks.values()))
    @rule(data=st.data())
    def cancel_pending(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from([k for k, t in self.tasks.items() if t.status == "pending"]))
        t = self.tasks[task_id]
        self.run(
            self.scripts.call(
                "cancel_task",
                keys=[self.keys.task(task_id)],
                args=[self.keys.base, self.now, task_id, t.user],
            )
        )
        b = self.users[t.user].bal[t.unit]
        b["frozen"] -= t.frozen
        b["available"] += t.frozen
        t.status = "done"

    @precondition(lambda self: self.users)
    @rule(data=st.data(), unit=st.sampled_from(UNITS), amount=st.integers(1, 2000))
    def top_up(self, data: st.DataObject, unit: str, amount: int) -> None:
        uid = data.draw(st.sampled_from(list(self.users)))
        self.run(
            self.scripts.call(
                "adjust_wallet",
                keys=[self.keys.wallet(uid), self.keys.ledger(uid)],
                args=[self.now, uid, unit, amount, "top_up", "test"],
            )
        )
        b = self.users[uid].bal[unit]
        b["available"] += amount
        b["deposited"] += amount

    @rule()
    def next_day(self) -> None:
        self.day += 1

    # --- invariants ------------------------------------------------------------------------------
    @invariant()
    def conserved_and_matching(self) -> None:
        for uid, m in self.users.items():
            for unit in UNITS:
                real = self.run(wallet(self.redis, self.keys, uid, unit))
                assert real == m.bal[unit], (unit, real, m.bal[unit])
                assert (
                    real["deposited"] + real["converted_in"]
                    == real["available"] + real["frozen"] + real["consumed"] + real["converted_out"]
                )
                assert min(real["available"], real["frozen"], real["consumed"]) >= 0
            if all(t.status == "done" for t in self.tasks.values() if t.user == uid):
                assert all(m.bal[u]["frozen"] == 0 for u in UNITS)


@pytest.mark.slow
def test_money_model(redis_url: str) -> None:
    MoneyMachine.redis_url = redis_url
    run = MoneyMachine.TestCase()
    run.settings = settings(
        # 60 runs of up to 50 steps each; TASKGATE_PROPERTY_SCALE multiplies the runs (a long run)
        max_examples=examples(60),
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    run.runTest()
