"""A lease must be renewed at least twice per lifetime: a setting that breaks this is refused at
start with a message naming it, instead of running attempts being reaped as lost under load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from taskgate.cli import main
from taskgate.settings import Settings


@pytest.mark.parametrize(("lease_ms", "renew_s"), [(5000, 5.0), (30_000, 16.0), (30_000, 0.0)])
def test_a_renewal_slower_than_half_the_lease_is_refused(lease_ms: int, renew_s: float) -> None:
    with pytest.raises(ValidationError, match="at most half of TASKGATE_LEASE_MS"):
        Settings(lease_ms=lease_ms, renew_interval_s=renew_s)


def test_half_the_lease_and_the_defaults_are_accepted() -> None:
    assert Settings(lease_ms=3000, renew_interval_s=1.5).renew_interval_s == 1.5
    defaults = Settings()
    assert defaults.renew_interval_s * 1000 * 2 <= defaults.lease_ms


def test_a_process_refuses_to_start_with_it(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("TASKGATE_LEASE_MS", "5000")
    monkeypatch.setenv("TASKGATE_RENEW_INTERVAL_S", "5")
    with pytest.raises(SystemExit) as info:
        main(["worker"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid TASKGATE_RENEW_INTERVAL_S" in err and "Traceback" not in err
