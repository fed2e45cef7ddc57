import os
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Role(StrEnum):
    node = "node"
    hub = "hub"


class Settings(BaseSettings):
    """Everything a node reads from its environment (prefix ``INTEGRA_``, plus ``DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="INTEGRA_", extra="ignore")

    environment: Environment = Environment.development
    role: Role = Role.node
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    data_dir: Path = Path(".integra")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "INTEGRA_DATABASE_URL")
    )
    secret_key: str = PLACEHOLDER_SECRET
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    login_token_ttl: timedelta = timedelta(hours=12)
    page_size_max: Annotated[int, Field(ge=1, le=1000)] = 200
    # The largest request body read (bytes): a longer one is answered 413 before it is read,
    # with or without a Content-Length. A practice at every field's limit takes about 1 MB.
    request_body_max: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    # Jobs: with no broker, outbox work runs in-process right after each commit, and a sweep
    # every `outbox_sweep_interval` repairs anything a crash left behind.
    broker_url: str | None = None
    outbox_sweep_interval: timedelta = timedelta(seconds=30)
    # Federation: where the private signing keys live (default: `keys/` in the data
    # directory), and the largest feed page this node serves.
    keys_dir: Path | None = None
    # Hub: how often each enrolled node is pulled (failures back off on their own).
    hub_sync_interval: timedelta = timedelta(seconds=60)
    # Processes a round may use to sync peers with a large backlog side by side (0: one per CPU
    # core, up to 4). A Celery worker runs peers side by side through its own pool instead.
    hub_sync_workers: Annotated[int, Field(ge=0, le=64)] = 0
    # Peers: every request to a peer ends within `peer_request_deadline` (the whole answer,
    # not each read), and an answer slower than `peer_min_rate` bytes/s once
    # `peer_rate_grace` has passed is cut: a failure for that peer only, with backoff.
    peer_request_deadline: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(seconds=120)
    peer_min_rate: Annotated[int, Field(ge=0)] = 32 * 1024
    peer_rate_grace: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(seconds=5)
    # A peer whose signed checkpoint is older than this is flagged stale.
    peer_freshness: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(days=1)
    # Peer URLs must be https:// (plain http:// only on a loopback address) unless this is set:
    # development and demos across machines only, never production.
    allow_insecure_peers: bool = False
    feed_page_max: Annotated[int, Field(ge=1, le=5000)] = 500
    # Search: "sql" (SQLite FTS5 / PostgreSQL full text) or "meilisearch".
    search_backend: Literal["sql", "meilisearch"] = "sql"
    meili_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MEILI_URL", "INTEGRA_MEILI_URL")
    )
    meili_key: str | None = Field(
        default=None, validation_alias=AliasChoices("MEILI_MASTER_KEY", "INTEGRA_MEILI_KEY")
    )

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
    def sync_workers(self) -> int:
        return self.hub_sync_workers or min(4, os.cpu_count() or 1)

    @property
    def sqlalchemy_url(self) -> str:
        """The async URL the application uses."""
        return async_url(self.database_url or f"sqlite:///{self.data_dir.resolve() / 'node.db'}")


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
