"""All configuration, read once per process from ``TASKGATE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Root settings. Build once in ``cli.py`` (or directly in tests) and pass down explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="TASKGATE_", env_nested_delimiter="__", extra="ignore", env_ignore_empty=True
    )

    # --- store
    redis_url: str = "redis://127.0.0.1:6379/0"  # or redis+sentinel://h1:26379,h2:26379/service/db
    redis_sentinels: str = ""  # host:port,host:port; overrides the sentinels of the URL
    redis_sentinel_service: str = ""  # the master's service name (with redis_sentinels)
    redis_sentinel_password: SecretStr = SecretStr("")  # when the sentinels themselves need AUTH
    redis_connect_timeout_s: float = 2.0
    redis_socket_timeout_s: float = 15.0  # above every blocking call's own timeout
    redis_retry_s: float = 15.0  # how long a script call retries through a failover before giving up
    # durability: an acknowledged create/settlement waits until this many replicas have it (WAIT);
    # 0 = off (a single Redis); set 1+ with Sentinel so a failover loses nothing acknowledged
    redis_min_replicas_ack: int = Field(0, ge=0, le=16)
    redis_wait_timeout_ms: int = Field(1000, ge=1)
    key_prefix: str = Field("tg", pattern=r"^[A-Za-z0-9:_\-]{1,64}$")

    @field_validator("redis_url")
    @classmethod
    def _redis_url_form(cls, value: str) -> str:
        from taskgate.store.connection import parse_redis_url

        parse_redis_url(value)  # ValueError names what is wrong
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_form(cls, value: str) -> str:
        from taskgate.store.connection import parse_sentinels

        if value.strip():
            parse_sentinels(value)
        return value.strip()

    # --- logging
    log_profile: str = Field("auto", pattern=r"^(auto|json|console)$")
    log_level: str = "INFO"

    # --- api
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    admin_token: SecretStr = SecretStr("")
    body_limit_bytes: int = 256 * 1024
    page_size_max: int = 100
    header_read_timeout_s: float = Field(10.0, gt=0)  # request line + headers must arrive within this
    body_read_timeout_s: float = Field(30.0, gt=0)  # a request body must arrive within this
    max_connections: int = Field(1024, ge=1)  # open client connections per API process; more are refused
    # a create reuses an API key's user for this long (its script re-checks key and plan; 0 = off)
    auth_cache_s: float = Field(5.0, ge=0)

    # --- probe servers of the worker and scheduler: /metrics, /healthz, /readyz (0 = off)
    probe_host: str = "127.0.0.1"
    worker_probe_port: int = Field(9101, ge=0, le=65535)
    scheduler_probe_port: int = Field(9102, ge=0, le=65535)
    liveness_stale_s: float = 30.0  # /healthz fails when the role's loop has not run for this long
    metrics_cache_s: float = Field(2.0, ge=0)  # the API reads cluster figures from Redis at most this often

    # --- data files (plans, models, prices, banned words); default: shipped in the package
    catalogue_path: Path | None = None

    # --- scheduler (rules S1-S7)
    lease_ms: int = 30_000  # a slot lease lives this long unless the worker renews it
    renew_interval_s: float = 5.0

    @field_validator("renew_interval_s")
    @classmethod
    def _renews_within_the_lease(cls, value: float, info: ValidationInfo) -> float:
        """A lease renewed less often than twice per lifetime expires between renewals under load,
        and its running attempt is reaped as lost."""
        lease_ms = info.data.get("lease_ms")
        if value <= 0 or (lease_ms is not None and value * 1000 * 2 > lease_ms):
            raise ValueError(f"must be above 0 and at most half of TASKGATE_LEASE_MS ({lease_ms} ms)")
        return value

    dispatch_batch: int = 64  # most dispatches one script call may make
    # under load a dispatch round starts at most this often (a wake-up sooner waits for the rest)
    dispatch_min_interval_ms: float = Field(3.0, ge=0, le=1000)
    # back-pressure: no dispatch while this many dispatched jobs wait for a worker (0 = no bound);
    # about lease time x a conservative start rate (30 s x ~70 jobs/s)
    dispatch_max_queued: int = Field(2000, ge=0)
    relax_share: float = 0.10  # S3: relax floor while relax work waits
    relax_max_wait_ms: int = 600_000  # S3: no relax task waits longer while capacity exists
    plan_weights: dict[str, int] = Field(
        default_factory=lambda: {"free": 1, "developer": 1, "premium": 1, "enterprise": 1}
    )
    sweep_interval_s: float = 1.0  # the slow safety sweep (expired leases, parked flows)
    max_attempts: int = 3  # dispatch attempts before a task fails for good
    byoa_max_wait_ms: int = 600_000  # S6: a BYOA task without failover waits this long at most
    # S10: a task no account can serve (now or after a running cooldown) fails after this long
    pending_max_wait_ms: int = Field(900_000, ge=1000)

    # --- account health (S9)
    health_window_ms: int = 60_000  # rolling window of transient failures
    health_threshold: int = 3  # transient failures within the window that start a cooldown
    cooldown_base_ms: int = 10_000  # first cooldown; each further one in a row doubles it
    cooldown_max_ms: int = 3_600_000
    probe_interval_s: float = 60.0  # health probes of auto-disabled / captcha accounts

    # --- worker
    worker_max_jobs: int = 200  # arq jobs at once: submits (and resumes) in progress
    # attempts held in flight by the worker's watcher (worker/watcher.py), waiting for upstream
    worker_max_inflight: int = Field(50_000, ge=1)
    worker_watch_concurrency: int = Field(100, ge=1)  # the watcher's polls and finishes at once
    worker_poll_delay_s: float = 0.5  # upper bound; workers are woken on dispatch
    job_timeout_s: int = 3600
    worker_shutdown_grace_s: float = 10.0  # on SIGTERM running attempts get this long, then are handed back
    upstream_poll_interval_s: float = 0.05
    upstream_timeout_s: float = 10.0
    # adaptive polling (worker/polling.py): intervals follow data/durations.toml, within these bounds
    upstream_poll_max_interval_s: float = 10.0
    upstream_polls_per_s_per_account: float = 100.0  # per worker process; 0 = no cap
    poll_durations_path: Path | None = None  # default: the durations.toml shipped in the package
    # upstream callbacks (taskgate/providers/callbacks.py): off unless both are set
    callback_base_url: str = ""  # how upstreams reach this deployment's API, e.g. https://tg.example.com
    callback_secret: SecretStr = SecretStr("")  # the same on every API replica and worker
    callback_safety_poll_s: float = 30.0  # with callbacks, the slow safety poll's interval

    # --- webhooks (§7)
    webhook_allow_private: bool = False
    webhook_timeout_s: float = 10.0
    # delay before attempt n+1 after attempt n failed (the first attempt is immediate): ~1 day in all
    webhook_retry_delays_s: tuple[float, ...] = Field(
        (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600), min_length=1
    )
    webhook_claim_ms: int = Field(60_000, gt=0)  # longer than any attempt (timeout): a live sender keeps it
    # a sender is woken when a delivery is queued; this poll is only the fallback (a lost wake-up)
    webhook_poll_interval_s: float = Field(1.0, gt=0, le=10)  # under redis_socket_timeout_s (BLPOP)
    webhook_max_in_flight: int = Field(100, gt=0)  # concurrent POSTs per sender process

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
    sim_base_url: str = ""  # where workers reach the simulator; "" = http://sim_host:sim_port
    sim_seed: int | None = None  # a fixed seed makes the simulator's random outcomes repeatable

    @property
    def sim_url(self) -> str:
        """The simulator that sim accounts without a base URL of their own are sent to."""
        if self.sim_base_url:
            return self.sim_base_url.rstrip("/")
        host = "127.0.0.1" if self.sim_host in ("0.0.0.0", "::", "") else self.sim_host
        return f"http://{host}:{self.sim_port}"
