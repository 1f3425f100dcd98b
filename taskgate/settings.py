"""All configuration, read once per process from ``TASKGATE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Root settings. Build once in ``cli.py`` (or directly in tests) and pass down explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="TASKGATE_", env_nested_delimiter="__", extra="ignore", env_ignore_empty=True
    )

    # --- store
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("tg", pattern=r"^[A-Za-z0-9:_\-]{1,64}$")

    # --- logging
    log_profile: str = Field("auto", pattern=r"^(auto|json|console)$")
    log_level: str = "INFO"

    # --- api
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    admin_token: SecretStr = SecretStr("")
    body_limit_bytes: int = 256 * 1024
    page_size_max: int = 100

    # --- data files (plans, models, prices, banned words); default: shipped in the package
    catalogue_path: Path | None = None

    # --- scheduler (rules S1-S7)
    lease_ms: int = 30_000  # a slot lease lives this long unless the worker renews it
    renew_interval_s: float = 5.0
    dispatch_batch: int = 64  # most dispatches one script call may make
    relax_share: float = 0.10  # S3: relax floor while relax work waits
    relax_max_wait_ms: int = 600_000  # S3: no relax task waits longer while capacity exists
    plan_weights: dict[str, int] = Field(
        default_factory=lambda: {"free": 1, "developer": 1, "premium": 1, "enterprise": 1}
    )
    sweep_interval_s: float = 1.0  # the slow safety sweep (expired leases, parked flows)
    max_attempts: int = 3  # dispatch attempts before a task fails for good
    byoa_max_wait_ms: int = 600_000  # S6: a BYOA task without failover waits this long at most

    # --- account health (S9)
    health_window_ms: int = 60_000  # rolling window of transient failures
    health_threshold: int = 3  # transient failures within the window that start a cooldown
    cooldown_base_ms: int = 10_000  # first cooldown; each further one in a row doubles it
    cooldown_max_ms: int = 3_600_000
    probe_interval_s: float = 60.0  # health probes of auto-disabled / captcha accounts

    # --- worker
    worker_max_jobs: int = 200
    worker_poll_delay_s: float = 0.5  # upper bound; workers are woken on dispatch
    job_timeout_s: int = 3600
    worker_shutdown_grace_s: float = 10.0  # on SIGTERM running attempts get this long, then are handed back
    upstream_poll_interval_s: float = 0.05
    upstream_timeout_s: float = 10.0
    # adaptive polling (worker/polling.py): intervals follow data/durations.toml, within these bounds
    upstream_poll_max_interval_s: float = 10.0
    upstream_polls_per_s_per_account: float = 100.0  # per worker process; 0 = no cap
    poll_durations_path: Path | None = None  # default: the durations.toml shipped in the package
    # upstream callbacks (taskgate/callbacks.py): off unless both are set
    callback_base_url: str = ""  # how upstreams reach this deployment's API, e.g. https://tg.example.com
    callback_secret: SecretStr = SecretStr("")  # the same on every API replica and worker
    callback_safety_poll_s: float = 30.0  # with callbacks, the slow safety poll's interval

    # --- webhooks (§7)
    webhook_allow_private: bool = False
    webhook_timeout_s: float = 10.0

    # --- upstream simulator (taskgate upstream-sim / dev)
    sim_host: str = "127.0.0.1"
    sim_port: int = 8010
    sim_latency_turbo_s: float = 0.3
    sim_latency_fast_s: float = 0.8
    sim_latency_relax_s: float = 2.0
    sim_failure_rate: float = 0.0
    sim_incorrect_rate: float = 0.0
    sim_captcha_rate: float = 0.0
    sim_ban_rate: float = 0.0
    sim_seed: int | None = None  # a fixed seed makes the simulator's random outcomes repeatable
