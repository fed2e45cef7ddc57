"""The node's settings: one typed class, read from the environment and from a configuration file.

Each setting comes from, in order: the environment (prefix ``INTEGRA_``, plus ``DATABASE_URL``,
``MEILI_URL``, ``MEILI_MASTER_KEY``), the configuration file (``integra.toml`` in the data
directory, or the file named by ``INTEGRA_CONFIG``), its default. The server, its workers and every
CLI command on one node read the same file, so an administrator's shell needs no copy of the
server's environment (`integra config init` writes the file, `integra config show` says where
each setting came from).
"""

import difflib
import os
import tomllib
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"
CONFIG_ENV = "INTEGRA_CONFIG"
CONFIG_NAME = "integra.toml"
DEFAULT_DATA_DIR = Path(".integra")
# Settings whose value is never printed.
SECRETS = frozenset({"secret_key", "meili_key", "smtp_password", "metrics_token"})
PATHS = frozenset({"data_dir", "keys_dir"})


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Role(StrEnum):
    node = "node"
    hub = "hub"


class ConfigFileError(ValueError):
    """The configuration file cannot be used as it is: said with its path and the setting."""


def _env(name: str) -> str | None:
    """An environment variable, its name in any case (as the settings read them)."""
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return None


class Settings(BaseSettings):
    """Everything a node reads from its environment and its configuration file."""

    model_config = SettingsConfigDict(env_prefix="INTEGRA_", extra="ignore")

    environment: Environment = Field(
        Environment.development, description="`production` refuses the placeholder secret"
    )
    role: Role = Field(Role.node, description="`hub` pulls the enrolled nodes on its own")
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = Field(
        None,
        description="the node's ISO country code: its records' origin in the signed feed "
        "(no feed without it)",
    )
    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="where the SQLite file, the keys and this file live"
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "INTEGRA_DATABASE_URL"),
        description="e.g. postgresql://user@host/db (default: node.db in the data directory)",
    )
    database_pool_size: Annotated[int, Field(ge=1, le=200)] = Field(
        15,
        description="database connections each API process keeps open: as many as the requests "
        "it serves at once, so that none is opened per request under load",
    )
    database_pool_overflow: Annotated[int, Field(ge=0, le=200)] = Field(
        5, description="connections an API process may open beyond those, closed after use"
    )
    secret_key: str = Field(
        PLACEHOLDER_SECRET, description="keys the token hashes; 32+ characters in production"
    )
    host: str = Field("127.0.0.1", description="where `integra serve` listens")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8000, description="where `integra serve` listens"
    )
    workers: Annotated[int, Field(ge=0, le=64)] = Field(
        0,
        description="processes `integra serve` answers requests with (0: one per CPU core, "
        "up to 4); background work runs in one of them",
    )
    login_token_ttl: timedelta = Field(
        timedelta(hours=12), description="lifetime of tokens issued by POST /api/v1/auth/token"
    )
    page_size_max: Annotated[int, Field(ge=1, le=1000)] = Field(
        200, description="the largest page a list answers"
    )
    # A practice at every field's limit takes about 1 MB.
    request_body_max: Annotated[int, Field(ge=1024)] = Field(
        4 * 1024 * 1024,
        description="the largest request body read (bytes): a longer one is answered 413 "
        "before it is read, with or without a Content-Length",
    )
    broker_url: str | None = Field(
        None,
        description="e.g. redis://127.0.0.1:6379/0: jobs go to Celery workers; without one, "
        "outbox work runs in the server's process",
    )
    outbox_sweep_interval: timedelta = Field(
        timedelta(seconds=30), description="how often pending outbox work is retried"
    )
    keys_dir: Path | None = Field(
        None, description="where the private signing keys are (default: keys/ in the data dir)"
    )
    hub_sync_interval: timedelta = Field(
        timedelta(seconds=60),
        description="how often a hub pulls each node, and a mirroring node the hub",
    )
    # A Celery worker runs peers side by side through its own pool instead.
    hub_sync_workers: Annotated[int, Field(ge=0, le=64)] = Field(
        0,
        description="processes a round may use to sync peers with a large backlog side by "
        "side (0: one per CPU core, up to 4)",
    )
    peer_request_deadline: Annotated[timedelta, Field(gt=timedelta(0))] = Field(
        timedelta(seconds=120),
        description="every request to a peer ends within this (the whole answer, not each read)",
    )
    peer_min_rate: Annotated[int, Field(ge=0)] = Field(
        32 * 1024,
        description="an answer slower than this many bytes/s once peer_rate_grace has passed "
        "is cut: a failure for that peer only, with backoff",
    )
    peer_rate_grace: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(seconds=5), description="see peer_min_rate"
    )
    peer_freshness: Annotated[timedelta, Field(gt=timedelta(0))] = Field(
        timedelta(days=1), description="a peer whose signed checkpoint is older is flagged stale"
    )
    allow_insecure_peers: bool = Field(
        False,
        description="allow plain http:// peer URLs beyond loopback: development and demos "
        "across machines only, never production",
    )
    feed_page_max: Annotated[int, Field(ge=1, le=5000)] = Field(
        500, description="the largest feed page this node serves"
    )
    search_backend: Literal["sql", "meilisearch"] = Field(
        "sql", description="sql (SQLite FTS5 / PostgreSQL full text) or meilisearch"
    )
    meili_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MEILI_URL", "INTEGRA_MEILI_URL"),
        description="the Meilisearch server, with search_backend = meilisearch",
    )
    meili_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MEILI_MASTER_KEY", "INTEGRA_MEILI_KEY"),
        description="its API key",
    )
    smtp_host: str | None = Field(
        None, description="the mail server that sends password-reset links (none: shown only)"
    )
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(587, description="its port")
    smtp_user: str | None = Field(None, description="the mail server's user name, if any")
    smtp_password: str | None = Field(None, description="its password")
    smtp_starttls: bool = Field(True, description="upgrade the connection with STARTTLS")
    smtp_from: str = Field("integra@localhost", description="the sender of the mails")

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="the least severe log event written (JSON lines on stderr)"
    )
    access_log: bool = Field(True, description="log every request answered (one JSON line)")
    metrics_token: str | None = Field(
        None,
        description="a bearer token that lets a scraper read /metrics from any address "
        "(without one, /metrics answers loopback clients only)",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call the API from a browser (none: CORS closed)",
    )
    api_token_ttl: Annotated[timedelta, Field(gt=timedelta(0))] = Field(
        timedelta(days=90),
        description="lifetime of tokens `integra token create` issues without --days",
    )
    sign_in_window: Annotated[timedelta, Field(gt=timedelta(0))] = Field(
        timedelta(minutes=15), description="the window the sign-in limits count in"
    )
    sign_in_account_failures: Annotated[int, Field(ge=1)] = Field(
        10, description="failed sign-ins to one account in the window before it is throttled"
    )
    sign_in_address_failures: Annotated[int, Field(ge=1)] = Field(
        30, description="failed sign-ins from one address in the window before it is throttled"
    )
    sign_in_address_attempts: Annotated[int, Field(ge=1)] = Field(
        120,
        description="sign-ins (tokens created) from one address in the window, failed or not",
    )

    # Retention of personal data (node.privacy): each kind is removed once kept this long; a
    # period of 0 (P0D) keeps it for ever. `integra privacy retention --dry-run` shows what
    # would go; the node applies them every retention_interval.
    retention_audit_entries: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(days=3 * 365), description="audit entries are kept this long (default 3 years)"
    )
    retention_unverified_contacts: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(days=2 * 365),
        description="a contact point not verified for this long is removed (never verified: "
        "not changed for this long; default 2 years)",
    )
    retention_visit_participants: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(days=5 * 365),
        description="the participants' names of a study visit that ended this long ago are "
        "removed; the report stays (default 5 years)",
    )
    retention_expired_tokens: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(days=90),
        description="API tokens expired or revoked this long ago are removed (default 90 days)",
    )
    retention_disabled_accounts: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        timedelta(days=365),
        description="accounts disabled this long ago are removed, their tokens with them "
        "(default 1 year)",
    )
    retention_interval: Annotated[timedelta, Field(gt=timedelta(0))] = Field(
        timedelta(days=1), description="how often the retention periods are applied"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = getattr(init_settings, "init_kwargs", {})
        path = config_path(Path(given["data_dir"]) if given.get("data_dir") else None)
        return init_settings, env_settings, ConfigFile(settings_cls, path)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        if self.environment is Environment.production and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("INTEGRA_SECRET_KEY must be set to a real secret in production")
        if self.environment is Environment.production and len(self.secret_key) < 32:
            raise ValueError("INTEGRA_SECRET_KEY must be at least 32 characters in production")
        if self.search_backend == "meilisearch" and not self.meili_url:
            raise ValueError("INTEGRA_SEARCH_BACKEND=meilisearch needs MEILI_URL")
        return self

    @property
    def api_workers(self) -> int:
        return self.workers or min(4, os.cpu_count() or 1)

    @property
    def sync_workers(self) -> int:
        return self.hub_sync_workers or min(4, os.cpu_count() or 1)

    @property
    def sqlalchemy_url(self) -> str:
        """The async URL the application uses."""
        return async_url(self.database_url or f"sqlite:///{self.data_dir.resolve() / 'node.db'}")

    @property
    def keys_path(self) -> Path:
        """The directory of the private signing keys, absolute."""
        return (self.keys_dir or self.data_dir / "keys").resolve()

    @property
    def config_file(self) -> Path:
        """Where this node's configuration file is (or would be)."""
        return config_path(self.data_dir)


def config_path(data_dir: Path | None = None) -> Path:
    """`INTEGRA_CONFIG` if set, else `integra.toml` in the data directory (given, else
    `INTEGRA_DATA_DIR`, else the default)."""
    if named := _env(CONFIG_ENV):
        return Path(named).expanduser().absolute()
    directory = data_dir or Path(_env("INTEGRA_DATA_DIR") or DEFAULT_DATA_DIR)
    return (directory.expanduser() / CONFIG_NAME).absolute()


def env_names(name: str) -> tuple[str, ...]:
    """The environment variables that set a setting, the first one the documented one."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (f"INTEGRA_{name.upper()}",)


def read_config(path: Path) -> dict[str, Any]:
    """The settings a configuration file gives, by setting name, checked for names it does not
    know (a typo must not be ignored in silence). Relative paths are relative to the file."""
    if not path.is_file():
        if _env(CONFIG_ENV):
            raise ConfigFileError(f"{CONFIG_ENV} names {path}, which is not a file")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    known = list(Settings.model_fields)
    for name in values:
        if name not in Settings.model_fields:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigFileError(f"{path}: unknown setting {name!r}{hint}")
    for name in PATHS & values.keys():
        if isinstance(values[name], str):
            values[name] = str((path.parent / Path(values[name]).expanduser()).resolve())
    if "data_dir" in values and not _env(CONFIG_ENV):
        if Path(values["data_dir"]) != path.parent.resolve():
            raise ConfigFileError(
                f"{path}: data_dir cannot move the data directory that holds this file "
                f"(name a file elsewhere with {CONFIG_ENV}, or set INTEGRA_DATA_DIR)"
            )
    return values


class ConfigFile(PydanticBaseSettingsSource):
    """The configuration file as a settings source, below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.values = read_config(path)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        # A setting read under another name in the environment is given under that name.
        return {
            env_names(name)[0] if name in ALIASED else name: v for name, v in self.values.items()
        }


ALIASED = frozenset(
    name for name, field in Settings.model_fields.items() if field.validation_alias is not None
)


def origin(name: str, path: Path | None = None) -> str:
    """Where a setting's value comes from: `environment (NAME)`, the configuration file's path
    (`path`, else the one the environment names), or `default`."""
    for variable in env_names(name):
        if _env(variable) is not None:
            return f"environment ({variable})"
    path = path or config_path()
    try:
        in_file = name in read_config(path)
    except ConfigFileError:
        in_file = False
    return str(path) if in_file else "default"


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver this project ships."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    url = async_url(url)  # one spelling first, then the sync driver of the same family
    return url.replace("sqlite+aiosqlite://", "sqlite://")


@lru_cache
def get_settings() -> Settings:
    return Settings()
