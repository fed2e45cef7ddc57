"""`integra demo`: an EU hub and the FR, PT, BG and GR nodes on 127.0.0.1, synced once.

Each member has its own data directory under the demo directory (SQLite, embedded jobs, SQL
search), a signing key and sample accounts whose password is kept there (mode 0600), so a
second run finds everything as the first left it. Set-up runs in this process, step by step;
then the nodes are served as child processes, the hub pulls them once, and the hub is served
too. Every member's output goes to `serve.log` in its directory.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import (
    err,
    operator,
    out,
    refusals_fail,
    run_in_session,
    run_or_fail,
    sync_round,
)
from node.core.settings import Role, Settings
from node.sample import SAMPLE_ACCOUNTS, set_sample_accounts

if TYPE_CHECKING:
    from federation.sync import Round

COUNTRIES = ("FR", "PT", "BG", "GR")
HUB_COUNTRY = "EU"
HOST = "127.0.0.1"
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
TABLE_WIDTH = 150
SYNC_INTERVAL = "PT10S"


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


class MemberSettings(Settings):
    """A member's settings are what the demo gives: nothing leaks in from the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class Member:
    role: Role
    country: str
    port: int
    data_dir: Path

    @property
    def label(self) -> str:
        return f"{self.role} {self.country}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / "serve.log"

    @property
    def settings(self) -> Settings:
        return MemberSettings(
            role=self.role, country=self.country, data_dir=self.data_dir, port=self.port
        )

    def environment(self) -> dict[str, str]:
        """The parent's environment without its INTEGRA_* and DATABASE_URL, plus the member's."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("INTEGRA_", "MEILI_")) and k != "DATABASE_URL"
        }
        return inherited | {
            "INTEGRA_DATA_DIR": str(self.data_dir),
            "INTEGRA_COUNTRY": self.country,
            "INTEGRA_ROLE": str(self.role),
            "INTEGRA_PORT": str(self.port),
            "INTEGRA_HOST": HOST,
            # The hub pulls the nodes, and the nodes the hub, every few seconds: a demo shows
            # a change travelling while one watches.
            "INTEGRA_HUB_SYNC_INTERVAL": SYNC_INTERVAL,
            # One API process per member: the demo runs several members on one machine, and
            # a supervisor with a worker per core each would start three times the processes.
            "INTEGRA_WORKERS": "1",
        }


@dataclass
class Demo:
    hub: Member
    nodes: list[Member]
    public_keys: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    rounds: dict[str, str] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    public: int = 0  # of the records held, those of scope `public` (found without signing in)
    mirrored: dict[str, int] = field(default_factory=dict)

    @property
    def members(self) -> list[Member]:
        return [self.hub, *self.nodes]


def plan(base_port: int, root: Path) -> Demo:
    root = root.resolve()
    hub = Member(Role.hub, HUB_COUNTRY, base_port, root / "hub")
    nodes = [
        Member(Role.node, country, base_port + 1 + i, root / country.lower())
        for i, country in enumerate(COUNTRIES)
    ]
    return Demo(hub=hub, nodes=nodes)


def run(base_port: int, root: Path) -> int:
    """Set up, start, sync once, print where everything is; serve until told to stop."""
    demo = plan(base_port, root)
    check_ports([m.port for m in demo.members])
    for step in SETUP:
        step(demo)
    with Children() as children:
        try:
            children.start(demo.nodes)
            children.wait_ready(demo.nodes)
            sync_hub(demo)
            children.start([demo.hub])
            children.wait_ready([demo.hub])
            subscribe_mirrors(demo)
            children.wait_mirrors(demo)
        except Stopped:
            out.print("stopped before the demo was ready")
            return 0
        print_summary(demo)
        return children.watch()


# --- set-up steps, each safe to repeat --------------------------------------------------------


def check_ports(ports: list[int]) -> None:
    for port in ports:
        with socket.socket() as probe:
            # As uvicorn does: a port left in TIME_WAIT by an earlier run is free to listen on.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError as exc:
                raise DemoError(
                    f"port {port} on {HOST} is taken ({exc.strerror}): stop what uses it, "
                    "or choose other ports with --base-port"
                ) from None


def prepare_members(demo: Demo) -> None:
    """Each member: migrated database, signing key, sample accounts with a kept password."""
    for member in demo.members:
        settings = member.settings  # migrated by the first step that opens it
        _, public, created = create_signing_key(settings)
        demo.public_keys[member.country] = public
        password = kept_password(member.data_dir / "sample-password")
        demo.passwords[member.country] = password

        async def _accounts(session: AsyncSession, password: str = password) -> None:
            await set_sample_accounts(session, password)

        run_in_session(_accounts, settings)
        out.print(f"{member.label}: database ready, signing key {'created' if created else 'kept'}")


def create_signing_key(settings: Settings) -> tuple[str, str, bool]:
    """The member's active signing key (id, public key), made first: (…, created)."""
    from federation import trust

    async def _create(session: AsyncSession) -> tuple[str, str, bool]:
        return await trust.create_signing_key(session, settings, by=operator())

    return run_in_session(_create, settings)


def enrol_peer(
    settings: Settings, *, origin: str, url: str, public_keys: list[str], kind: str = "node"
) -> None:
    """As `integra hub enrol` (or, with kind "hub", `integra mirror add`) does."""
    from federation import trust

    with refusals_fail():
        parsed = trust.parse_public_keys(public_keys)

    async def _enrol(session: AsyncSession) -> None:
        await trust.enrol_peer(
            session, origin=origin, url=url, public_keys=parsed, kind=kind, by=operator()
        )

    run_or_fail(_enrol, settings)


def kept_password(path: Path) -> str:
    """The password in `path`, or a new one written there readable by this user alone."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password


def enrol_nodes(demo: Demo) -> None:
    """The hub trusts each node for its country's records, under the node's key."""
    for node in demo.nodes:
        enrol_peer(
            demo.hub.settings,
            origin=node.country,
            url=node.url,
            public_keys=[demo.public_keys[node.country]],
        )
    out.print(f"hub: enrolled {', '.join(n.country for n in demo.nodes)}")


def trust_hub(demo: Demo) -> None:
    """Each node lets the hub read its `network` entries (the study-visit reports), as
    `integra hub trust` does: the hub signs its requests with its key."""
    for node in demo.nodes:
        enrol_peer(
            node.settings,
            origin=HUB_COUNTRY,
            url=demo.hub.url,
            public_keys=[demo.public_keys[HUB_COUNTRY]],
            kind="reader",
        )
    out.print(f"{', '.join(n.country for n in demo.nodes)}: the hub may read network records")


# In order; a new step (e.g. subscribing each node to the hub's aggregate feed) goes at its
# place in this list. All run before any server starts.
SETUP: list[Callable[[Demo], None]] = [prepare_members, enrol_nodes, trust_hub]


def sync_hub(demo: Demo) -> None:
    """One hub round now, before the hub serves, so that its own pulls cannot race this one.
    Every node is made due first: a round of an earlier run may have set them for later."""
    from federation.models import FederatedRecord, PeerSync
    from federation.sync import Round

    settings = demo.hub.settings

    async def _make_due(session: AsyncSession) -> None:
        await session.execute(update(PeerSync).values(next_attempt_at=None, running_since=None))

    async def _held(session: AsyncSession) -> dict[str, int]:
        rows = await session.execute(
            select(FederatedRecord.origin, func.count())
            .where(FederatedRecord.withdrawn.is_(False))
            .group_by(FederatedRecord.origin)
        )
        return {origin: count for origin, count in rows}

    async def _public(session: AsyncSession) -> int:
        found = await session.scalar(
            select(func.count()).where(
                FederatedRecord.withdrawn.is_(False), FederatedRecord.scope == "public"
            )
        )
        return int(found or 0)

    run_in_session(_make_due, settings)
    for origin, result in sync_round(settings).items():
        demo.rounds[origin] = _outcome(result) if isinstance(result, Round) else f"failed: {result}"
    demo.held = run_in_session(_held, settings)
    demo.public = run_in_session(_public, settings)


def subscribe_mirrors(demo: Demo) -> None:
    """Each node mirrors the hub's aggregate feed (as `integra mirror add` does), now that the
    hub answers: a running node picks the subscription up on its next pull."""
    from federation.models import PeerSync

    for node in demo.nodes:
        enrol_peer(
            node.settings,
            origin=HUB_COUNTRY,
            url=demo.hub.url,
            public_keys=[demo.public_keys[HUB_COUNTRY]],
            kind="hub",
        )

        async def _make_due(session: AsyncSession) -> None:
            await session.execute(update(PeerSync).values(next_attempt_at=None))

        run_in_session(_make_due, node.settings)
    out.print(f"{', '.join(n.country for n in demo.nodes)}: mirroring the hub's EU pool")


def _outcome(result: "Round") -> str:
    if not (result.applied or result.unchanged or result.refused):
        return "nothing new"
    return f"{result.applied} applied, {result.unchanged} unchanged, {result.refused} refused"


# --- child processes --------------------------------------------------------------------------


@dataclass
class Child:
    member: Member
    process: subprocess.Popen[bytes]
    log: IO[bytes]


class Children:
    """The served members. SIGINT and SIGTERM ask them all to stop; leaving the block stops
    them (terminate, wait, then kill) whatever happened."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def __enter__(self) -> "Children":
        self._previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def start(self, members: list[Member]) -> None:
        for member in members:
            log = member.log.open("ab")
            process = subprocess.Popen(
                # A node loads its country's sample data; a hub, by its role, none.
                [sys.executable, "-m", "node", "serve", "--sample-data"],
                env=member.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our signals reach them through us alone
            )
            self.children.append(Child(member, process, log))
            out.print(
                f"{member.label}: starting on {member.url} (pid {process.pid}, log: {member.log})",
                highlight=False,
            )

    def wait_ready(self, members: list[Member]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(members)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                self._check_alive()
                if self.stopping.is_set():
                    raise Stopped
                if time.monotonic() > deadline:
                    names = ", ".join(f"{m.label} (log: {m.log})" for m in waiting)
                    raise DemoError(f"not ready after {READY_TIMEOUT:.0f} s: {names}")
                waiting = [m for m in waiting if not _ready(client, m)]
                if waiting:
                    self.stopping.wait(0.3)

    def wait_mirrors(self, demo: Demo, seconds: float = 60.0) -> None:
        """Until each node's copy of the EU pool holds what the hub holds (or time runs out:
        the table then shows how far each got): counted by an anonymous search, which finds
        the records of scope `public`."""
        expected = demo.public
        deadline = time.monotonic() + seconds
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                if self.stopping.is_set():
                    raise Stopped
                for node in demo.nodes:
                    try:
                        page = client.get(f"{node.url}/api/v1/eu/search", params={"limit": 1})
                        demo.mirrored[node.country] = int(page.json()["total"])
                    except (httpx.HTTPError, ValueError, KeyError):
                        demo.mirrored[node.country] = 0
                if all(demo.mirrored.get(n.country) == expected for n in demo.nodes):
                    return
                self.stopping.wait(1.0)

    def watch(self) -> int:
        """Until a signal (exit 0) or a child's death (exit 1)."""
        while not self.stopping.wait(0.5):
            try:
                self._check_alive()
            except DemoError as exc:
                err.print(f"[red]error:[/red] {exc}", highlight=False)
                return 1
        out.print("stopping the hub and the nodes…")
        return 0

    def _check_alive(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise DemoError(
                    f"{child.member.label} on port {child.member.port} stopped unexpectedly "
                    f"(exit code {code}); see {child.member.log}"
                )

    def stop(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log.close()
        self.children = []


class Stopped(Exception):
    """A signal arrived while the demo was still starting."""


def _ready(client: httpx.Client, member: Member) -> bool:
    try:
        return client.get(f"{member.url}/readyz").status_code == 200
    except httpx.TransportError:
        return False


# --- what to try ------------------------------------------------------------------------------


def print_summary(demo: Demo) -> None:
    admin = SAMPLE_ACCOUNTS[0][0]
    table = Table(
        title="Integra Exchange demo: an EU hub and four national nodes",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for heading in ("role", "country", "URL", "API docs", "login", "password", "sync round"):
        table.add_column(heading, no_wrap=True)
    for member in demo.members:
        if member.role is Role.hub:
            held = sum(demo.held.values())
            did = f"holds {held} records from {len(demo.held)} countries"
        else:
            did = demo.rounds.get(member.country, "not due")
            did += f"; hub holds {demo.held.get(member.country, 0)}"
            did += f"; mirrors {demo.mirrored.get(member.country, 0)} of the EU pool"
        table.add_row(
            str(member.role),
            member.country,
            member.url,
            f"{member.url}/docs",
            admin,
            demo.passwords[member.country],
            did,
        )
    # Wide enough that no URL or password is cut short, even on a narrow terminal.
    Console(file=out.file, width=max(out.width, TABLE_WIDTH)).print(table)
    node = demo.nodes[0]
    out.print("Open in a browser (sign in with the accounts above):", highlight=False)
    out.print(
        f"  {demo.hub.url}/  the EU hub: search every node's records; each record shows its "
        "signatures (“verify this record”)",
        highlight=False,
        soft_wrap=True,
    )
    for member in demo.nodes:
        out.print(
            f"  {member.url}/  {member.country}: search (this country / EU-wide), "
            f"{member.url}/organisations (the registry), {member.url}/study-visits",
            highlight=False,
            soft_wrap=True,
        )
    out.print("Try the API:", highlight=False)
    for url in (
        f"{demo.hub.url}/api/v1/eu/search?q=reintegration",
        f"{demo.hub.url}/api/v1/eu/search?q=prison&country=GR",
        f"{node.url}/api/v1/practices/search?q=réinsertion",
        f"{node.url}/api/v1/eu/search?q=επανένταξη  (the EU pool, mirrored on the FR node)",
        f"{node.url}/api/v1/organisations",
    ):
        out.print(f"  {url}", highlight=False, soft_wrap=True)
    out.print(
        f"The practitioner account {SAMPLE_ACCOUNTS[1][0]} has the same password. "
        f"Logs: {demo.hub.data_dir.parent}/*/serve.log. The hub pulls the nodes, and the nodes "
        "the hub, every 10 seconds. Ctrl-C stops all five.",
        highlight=False,
    )
