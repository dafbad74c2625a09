"""Settings, read from ``EXCHANGE_*`` environment variables and passed in explicitly."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_project_dir(name: str) -> Path:
    # A source checkout keeps its content beside src/; an installed wheel falls back to cwd.
    here = Path(__file__).resolve().parents[2]
    candidate = here / name
    return candidate if candidate.is_dir() else Path.cwd() / name


class Settings(BaseSettings):
    """Everything configurable about one exchange process."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./.exchange/exchange.db",
        description="SQLAlchemy URL; sqlite:///… (embedded default) or postgresql+psycopg://…",
    )
    operator_key: str | None = Field(
        default=None, description="The platform operator's API key; generated when unset."
    )
    provider_secret: str | None = Field(
        default=None,
        description="Master secret the providers' credentials are derived from (the broker "
        "signs every provider call with them); generated and kept beside the operator key "
        "when unset.",
    )
    provider_window: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Seconds a signed provider call stays acceptable (mock departments).",
    )
    departments_direct_key: str | None = Field(
        default=None,
        description="A bearer key the mock departments accept in place of the exchange's "
        "signature, for benchmarks of a department alone; unset (the default), every "
        "unsigned call is refused. Never the operator key.",
    )
    upstream_client_cert: Path | None = Field(
        default=None,
        description="mTLS: the client certificate (PEM) the broker presents to https providers.",
    )
    upstream_client_key: Path | None = Field(
        default=None, description="mTLS: the private key (PEM) of upstream_client_cert."
    )
    upstream_ca: Path | None = Field(
        default=None,
        description="CA bundle (PEM) the broker trusts for https providers (default: system).",
    )
    level: Literal["city", "province"] = Field(
        default="city",
        description="Which platform this exchange is: a city's (the default) or the "
        "province's. A province reads its own units, catalog and mock departments "
        "(catalog/province, services/province) and keeps its state apart "
        "(.exchange/province/) unless those are set.",
    )
    platform_code: str | None = Field(
        default=None,
        description="This platform's unit code in its peer's registry (default: gz for a "
        "city, gdzsj for the province).",
    )
    peer_url: str | None = Field(
        default=None,
        description="Base URL of the other level's exchange (the province for a city, the "
        "city for the province); unset, this exchange is not federated.",
    )
    peer_credential: str | None = Field(
        default=None,
        description="The credential the peer's operator issued to this platform (`exchange "
        "federation credential` on the peer): this platform signs its calls to the peer "
        "with it, and checks the peer's answers.",
    )
    federation_page: int = Field(
        default=20_000,
        ge=100,
        le=100_000,
        description="Export rows asked per page when this platform pulls a peer topic's "
        "records in bulk (provision): larger pages amortise the signed call and the commit.",
    )
    federation_retention: float = Field(
        default=7 * 24 * 3600.0,
        ge=0,
        description="Seconds a stored page of bulk provision is kept as it came; older "
        "pages both sides acknowledged (every one but a topic's newest) are folded into "
        "one, their changes applied (0: keep every page as it came).",
    )
    federation_prune_pages: int = Field(
        default=50,
        ge=2,
        le=10_000,
        description="Pages one pruning pass reads and folds per provided topic at most.",
    )
    federation_prune_every: float = Field(
        default=60.0, gt=0, description="Seconds between pruning passes over stored pages."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None,
        description="Base URL others reach this exchange at (default http://host:port).",
    )
    catalog_dir: Path = Field(default_factory=lambda: _default_project_dir("catalog"))
    services_dir: Path = Field(default_factory=lambda: _default_project_dir("services"))
    catalog_profile: str = Field(
        default="core",
        description="Catalog seeded on first start: core, guangzhou-2017 or platform-2020.",
    )
    seed: int = Field(default=2020, description="Seed of the synthetic city and catalog.")
    population: int = Field(default=100_000, description="People in the synthetic city.")
    enterprises: int = Field(default=20_000, description="Enterprises in the synthetic city.")
    departments_export_workers: int = Field(
        default=2,
        ge=0,
        le=32,
        description="Processes the mock departments derive cold export chunks in, ahead of "
        "the page being sent (each holds a copy of the city, ~60 MB for 100,000 people); "
        "0 derives them in a thread of the serving process.",
    )
    departments_export_cache_mib: int = Field(
        default=256,
        ge=1,
        le=65_536,
        description="The mock departments' cache of serialised export chunks, MiB (least "
        "recently used dropped past it; counted twice a chunk's bytes: its lines and its "
        "blob). Exports of chunks held are a copy of bytes; others are derived again.",
    )
    city_change_scale: float = Field(
        default=1.0,
        ge=0,
        le=1_000_000,
        description="Multiplies every rate of change in the mock departments' city (births, "
        "tax payments …; per department in services/); 0 keeps the city still.",
    )
    city_change_max_keys: int = Field(
        default=200_000,
        ge=1,
        description="Changed records the mock departments hold; at the bound the city stops "
        "changing rather than forget a change.",
    )
    city_change_log: int = Field(
        default=100_000,
        ge=1,
        description="Change events each mock department keeps for its feed and publisher.",
    )
    city_publish: bool = Field(
        default=True,
        description="The mock departments publish their change events to the exchange "
        "(POST …/changes with each department's key), so subscribers see a living city.",
    )
    city_publish_url: str | None = Field(
        default=None,
        description="The exchange the mock departments publish to and read the platform "
        "clock from when they run alone (exchange serve departments); inside exchange up, "
        "the process itself.",
    )
    mock_departments: bool = Field(
        default=True, description="Serve the mock department APIs inside this process."
    )
    builtin_departments_url: str | None = Field(
        default=None,
        description="Where the broker reaches the built-in mock departments (default: this "
        "process's own address); exchange up --workers sets it to the departments' own "
        "process, so a provider call is not relayed through a second worker.",
    )
    gc_freeze: bool = Field(
        default=True,
        description="Once a serving process has built the exchange, move everything alive "
        "(catalog, caches, modules) out of the cyclic collector's sight (gc.freeze): full "
        "collections over that long-lived heap paused the event loop ~150 ms.",
    )
    gc_gen0_threshold: int = Field(
        default=0,
        ge=0,
        description="Allocations between two young-generation collections in a serving "
        "process; 0 (default) leaves CPython's own (700). A higher threshold (large "
        "services use ~50,000) collects less often over the same short-lived request "
        "objects; uncollected cyclic garbage stays bounded by it. Off by default: side by "
        "side on this project's benchmarks its saving was inside the run-to-run spread.",
    )
    busy_poll_us: int = Field(
        default=500,
        ge=0,
        le=10_000,
        description="µs a serving process keeps its event loop polling, instead of "
        "sleeping, while its only request waits for a provider's answer (exchange.busypoll): "
        "CPU burnt for a faster wake-up at low concurrency (measured: ~35 µs less added "
        "latency at one connection for ~35 µs more CPU a lookup); never for a provider "
        "whose recent lone answers all took longer than this; 0 is off.",
    )
    review_days: int = Field(default=10, description="Working days a provider has to review.")
    holidays: list[str] = Field(
        default_factory=list,
        description="Non-working days (YYYY-MM-DD) added to the chinese-calendar schedule.",
    )
    workdays: list[str] = Field(
        default_factory=list,
        description="Make-up working days (YYYY-MM-DD, 调休) added to the official schedule.",
    )
    # Weekdays by default: a simulator whose core flow (apply, review) stops every December
    # until a package release is worse than a deadline that may miss next year's Spring
    # Festival; the startup banner says when this applies. A deployment that must never
    # estimate sets "refuse".
    calendar_uncovered: Literal["refuse", "weekdays"] = Field(
        default="weekdays",
        description=(
            "A review deadline in a year the chinese-calendar package does not cover yet: "
            "count Monday-Friday plus the configured days (default; the banner says so), "
            "or refuse it (503 calendar_not_covered)."
        ),
    )
    lang: Literal["zh", "en"] = Field(
        default="zh",
        description="Language the CLI words the exchange's codes in (statuses, outcomes, "
        "decisions), from the glossary the portal uses; the portal has its own toggle.",
    )
    portal_demo: bool = Field(
        default=True,
        description="Portal for demonstrations: an identity picker of the demo departments, "
        "keys passed in the address (#key=…). Off, a department signs in with its key once "
        "and the key is never displayed.",
    )
    library_unit: str = Field(
        default="zsj",
        description="The member unit the base information libraries gather as (its grants "
        "on the source topics decide what they may gather).",
    )
    library_key: str | None = Field(
        default=None,
        description="The library unit's API key; default: its seeded key (derived from the "
        "operator key).",
    )
    library_gather_seconds: float = Field(
        default=0.0,
        ge=0.0,
        description="Run an incremental gathering pass of the base information libraries "
        "every so many seconds (0: only when the operator asks).",
    )
    library_page: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description="Records per export call when the libraries gather (one audit entry each).",
    )
    library_cache_subjects: int = Field(
        default=20_000,
        ge=0,
        le=10_000_000,
        description="People and enterprises whose gathered records each process keeps in "
        "memory for lookups (the most recently read; 0: every lookup reads the database). "
        "Dropped whenever the libraries change, in every process.",
    )
    log_level: str = "info"
    audit_key_file: Path | None = Field(
        default=None,
        description="The audit signing key (Ed25519, PEM); default: audit-signing.key beside "
        "the operator key, generated on first start. Keep it out of the database's reach.",
    )
    licence_key_file: Path | None = Field(
        default=None,
        description="The electronic licences' signing key (Ed25519, PEM); default: "
        "licence-signing.key beside the operator key, generated on first start.",
    )
    licence_status_max_age: int = Field(
        default=3600,
        ge=60,
        description="Seconds an offline verifier may rely on a copy of the licence status "
        "list (revocations) before it should fetch a new one.",
    )
    audit_mirror: str | None = Field(
        default=None,
        description="Where signed audit checkpoints are also appended: a file path or a "
        "database URL; default: audit-checkpoints.ndjson beside the operator key.",
    )
    audit_checkpoint_every: int = Field(
        default=10_000, ge=1, description="Sign an audit checkpoint at least every N entries."
    )
    audit_checkpoint_seconds: float = Field(
        default=5.0, gt=0, description="… and at least every this many seconds of traffic."
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        gt=0,
        description="Largest request body any route accepts (413 past it).",
    )
    body_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a whole request body (408 past it).",
    )

    @model_validator(mode="after")
    def _province_defaults(self) -> Settings:
        # A province is the same program on other content and its own state: defaults
        # that would otherwise point at the city's files are moved, explicit ones kept.
        if self.level == "province":
            given = self.model_fields_set
            if "catalog_dir" not in given:
                self.catalog_dir = _default_project_dir("catalog") / "province"
            if "services_dir" not in given:
                self.services_dir = _default_project_dir("services") / "province"
            if "database_url" not in given:
                self.database_url = "sqlite:///./.exchange/province/exchange.db"
            if "port" not in given:
                self.port = 8200
        return self

    @property
    def own_code(self) -> str:
        """This platform's unit code as its peer registers it."""
        return self.platform_code or ("gdzsj" if self.level == "province" else "gz")

    @property
    def peer_code(self) -> str:
        """The peer platform's unit code in this platform's own registry."""
        return "gz" if self.level == "province" else "gdzsj"

    # Distribution (subscriptions): push delivery's retries, dead letters and sharing.
    distribution_push_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds a push endpoint has to acknowledge."
    )
    distribution_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Push attempts of an event before its dead letter."
    )
    distribution_max_age: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="Seconds after its first failed push that an event goes to the "
        "dead-letter list whatever its attempts.",
    )
    distribution_backoff: float = Field(
        default=0.5, gt=0, description="First retry delay (s); doubles per attempt, jittered."
    )
    distribution_backoff_max: float = Field(
        default=300.0, gt=0, description="Longest retry delay (s)."
    )
    distribution_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most events in a subscription's first push (and whenever it is caught up).",
    )
    distribution_batch_max: int = Field(
        default=8_000,
        ge=1,
        le=50_000,
        description="Most events in one push to a subscription that is behind: from "
        "distribution_batch, each push doubles while the one before it found a full batch.",
    )
    distribution_lease: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a process holds a subscription it delivers (renewed per push); "
        "another process takes it over when a holder dies.",
    )
    distribution_concurrency: int = Field(
        default=256, ge=1, description="Subscriptions one process pushes to at once."
    )
    distribution_poll: float = Field(
        default=0.5,
        gt=0,
        description="Seconds between looks for work committed by other processes.",
    )
    distribution_workers: bool = Field(
        default=True, description="Run push delivery in this process (with the broker)."
    )
    distribution_retention: float = Field(
        default=7 * 24 * 3600.0,
        ge=0,
        description="Seconds an accepted change event is kept after every subscription of "
        "its topic has acknowledged it; older ones are pruned (0: keep every event). This "
        "is the replay window: a cursor older than what was pruned cannot be replayed.",
    )
    distribution_prune_every: float = Field(
        default=60.0, gt=0, description="Seconds between pruning passes."
    )
    distribution_prune_scan: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Event ids one pruning pass looks at (its work is bounded by this).",
    )

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def self_url(self) -> str:
        """Where this process reaches itself (the built-in mock departments live here)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; only entry points call this, never library code."""
    return Settings()
