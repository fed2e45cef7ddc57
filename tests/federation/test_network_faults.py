"""The network misbehaving between the hub and a node, and between a mirror and the hub: a fault
proxy (`faultproxy.py`) delays, trickles, cuts, endlessly lengthens, resets, duplicates or flips
a byte of the answers to feed pages. Whatever it does, the round ends within the configured
limits (set small here, so that each case takes seconds), in bounded memory, with the failure's
reason on the peer's status and in its refusals (or, if the round coped by itself, nothing
lost); and the next round, the proxy passing everything through, ends with the pool an
undisturbed pull gave.

One node (a real process with the sample data, serving feed pages of four entries) and one hub
(a real process, serving the aggregate the same way) per database: every case pulls through a
proxy in front of one of them, into a fresh database. The rounds run in the test's process
(what `integra hub sync` and `integra mirror sync` run), so that their memory can be traced."""

import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.models import PEER_HUB, PEER_NODE, PEER_READER, NodeKey, PeerKey
from federation.models import Peer as PeerRow
from federation.sync import MAX_PAGE_BYTES, Round
from node.console import sync_round
from node.core.settings import Settings, sync_url
from tests.conftest import Database
from tests.federation.faultproxy import FaultProxy
from tests.federation.forgery import due_now, rows
from tests.federation.test_crash import searchable, state_digest
from tests.federation.test_sync import start

PAGE = "4"  # entries per feed page: the sample's feed comes in several pages
DEADLINE, GRACE, MIN_RATE = 3.0, 0.5, 1024  # small limits: a case takes seconds, not minutes
MEMORY = 4 * MAX_PAGE_BYTES  # what a round may hold at its peak, whatever the network does
DEAD = "http://127.0.0.1:9"  # the URL of a peer that is never pulled here


@dataclass
class Federation:
    database: Database
    tmp: Path
    node: FaultProxy  # in front of the node
    hub: FaultProxy  # in front of the hub
    node_key: str
    hub_key: keys.SigningKey  # every hub that pulls the node signs its requests with it
    mirror_key: keys.SigningKey  # and every mirror that pulls the hub with this one
    calm_hub: tuple[Any, ...]  # the pools an undisturbed pull gave
    calm_mirror: tuple[Any, ...]

    def puller(self, kind: str, name: str) -> tuple[Settings, FaultProxy, tuple[Any, ...]]:
        """A new hub that pulls the node through its proxy, or a new mirror that pulls the hub
        through its proxy; and the pool an undisturbed pull gave."""
        data = self.tmp / f"{kind}-{name}"
        if kind == "hub":
            settings = keyed(self.database, data, "EU", "hub", self.hub_key)
            add_peer(settings.database_url or "", "PT", self.node.url, self.node_key, PEER_NODE)
            return settings, self.node, self.calm_hub
        settings = keyed(self.database, data, "FR", "node", self.mirror_key)
        add_peer(settings.database_url or "", "EU", self.hub.url, self.hub_key.public_b64, PEER_HUB)
        return settings, self.hub, self.calm_mirror


def settings_of(db: str, data: Path, country: str, role: str) -> Settings:
    return Settings(
        database_url=db,
        data_dir=data,
        country=country,
        role=role,
        hub_sync_interval=timedelta(hours=1),
        peer_request_deadline=timedelta(seconds=DEADLINE),
        peer_rate_grace=timedelta(seconds=GRACE),
        peer_min_rate=MIN_RATE,
    )


def add_peer(db: str, origin: str, url: str, key: str, kind: str) -> None:
    """A peer (its origin, URL, public key and kind) as `integra hub enrol`, `mirror add` or
    `hub trust` write it."""
    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        row = PeerRow(origin=origin, base_url=url, kind=kind)
        session.add(row)
        session.flush()
        session.add(PeerKey(key_id=keys.key_id_of(keys.unb64(key)), peer_id=row.id, public_key=key))
        session.commit()
    engine.dispose()


def keyed(
    database: Database, data: Path, country: str, role: str, key: keys.SigningKey
) -> Settings:
    """A database with this signing key: what `integra keys init` writes."""
    settings = settings_of(database.fresh_copy(), data, country, role)
    keys.save(key, feed.key_path(settings, key.key_id))
    engine = create_engine(sync_url(settings.database_url or ""))
    with Session(engine) as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        session.commit()
    engine.dispose()
    return settings


def pool(db: str) -> tuple[Any, ...]:
    """The records held (origin, id, version, withdrawn, body hash), the relays, the search."""
    return *state_digest(db), searchable(db)


def synced(settings: Settings) -> Round:
    [(_, result)] = sync_round(settings).items()
    assert isinstance(result, Round), result
    return result


@pytest.fixture(scope="module")
def federation(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    tmp = tmp_path_factory.mktemp("faults")
    node_key, hub_key, mirror_key = keys.generate(), keys.generate(), keys.generate()
    processes, proxies = [], []
    try:
        node = keyed(database, tmp / "pt", "PT", "node", node_key)
        # The node lets the hub read it (`integra hub trust`): the hub signs its requests.
        add_peer(node.database_url or "", "EU", DEAD, hub_key.public_b64, PEER_READER)
        process, node_url = start(
            "node",
            tmp,
            {
                "INTEGRA_COUNTRY": "PT",
                "INTEGRA_FEED_PAGE_MAX": PAGE,
                "DATABASE_URL": node.database_url or "",
                "INTEGRA_DATA_DIR": str(tmp / "pt"),
            },
            "--sample-data",
        )
        processes.append(process)
        proxies.append(FaultProxy(("127.0.0.1", int(node_url.rpartition(":")[2]))).start())

        # The hub the mirrors pull: it pulled the node undisturbed, its pool is the reference;
        # it enrols the mirrors' country, whose requests it then answers whole.
        hub = keyed(database, tmp / "hub", "EU", "hub", hub_key)
        add_peer(hub.database_url or "", "PT", node_url, node_key.public_b64, PEER_NODE)
        assert synced(hub).applied >= 10
        add_peer(hub.database_url or "", "FR", DEAD, mirror_key.public_b64, PEER_NODE)
        process, hub_url = start(
            "hub",
            tmp,
            {
                "INTEGRA_COUNTRY": "EU",
                "INTEGRA_ROLE": "hub",
                "INTEGRA_FEED_PAGE_MAX": PAGE,
                "INTEGRA_HUB_SYNC_INTERVAL": "PT1H",
                "DATABASE_URL": hub.database_url or "",
                "INTEGRA_DATA_DIR": str(tmp / "hub"),
            },
        )
        processes.append(process)
        proxies.append(FaultProxy(("127.0.0.1", int(hub_url.rpartition(":")[2]))).start())
        federation = Federation(
            database,
            tmp,
            proxies[0],
            proxies[1],
            node_key.public_b64,
            hub_key,
            mirror_key,
            pool(hub.database_url or ""),
            (),
        )
        mirror, _, _ = federation.puller("mirror", "calm")
        proxies[1].set("pass")
        assert synced(mirror).applied >= 10
        federation.calm_mirror = pool(mirror.database_url or "")
        yield federation
    finally:
        for proxy in proxies:
            proxy.stop()
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


# What each fault does (the proxy's mode and options), and what the round says of it: a part of
# the failure recorded on the peer, or None when the round copes by itself (nothing lost, nothing
# to record). A fault that the round outlives is done once (`times`), as a network glitch is:
# one done to every answer is a peer that lies, which the forged peers' tests cover.
CASES: dict[str, tuple[dict[str, Any], str | None]] = {
    # Every answer (keys, checkpoint, directory, pages) late: slow, within the limits.
    "delay": ({"mode": "delay", "delay": 0.1, "target": "/"}, None),
    # Cut by the minimum rate once the grace period has passed.
    "trickle": ({"mode": "trickle", "rate": 1.0}, "under the minimum of 1024 bytes/s"),
    "cut": ({"mode": "cut", "fraction": 0.6, "times": 1}, "without sending complete message body"),
    # Cut at the size limit of a page, then asked again for half as many entries.
    "endless": ({"mode": "endless", "times": 1}, None),
    "reset": ({"mode": "reset", "times": 1}, "Connection reset by peer"),
    # The second page answered with the first again: the entries do not match the checkpoint.
    "duplicate": ({"mode": "duplicate", "times": 2}, "Merkle root does not match"),
    # A byte of a body (the middle of a page): its hash does not match what the entry signs;
    # the entry is fetched again, alone, before it could be refused.
    "flip": ({"mode": "flip", "times": 1}, None),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("puller", ["hub", "mirror"])
def test_a_round_through_a_misbehaving_network_gives_up_in_time_and_the_next_catches_up(
    federation: Federation, puller: str, case: str
) -> None:
    settings, proxy, calm = federation.puller(puller, case)
    db = settings.database_url or ""
    options, expected = CASES[case]
    proxy.set(**options)

    tracemalloc.start()
    began = time.monotonic()
    try:
        [(_, result)] = sync_round(settings).items()
        took = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    served, asked = proxy.faulted(), [s.path for s in proxy.served]
    proxy.set("pass")
    assert served, f"the proxy met no request to disturb: {asked}"
    # Bounded: each request the round made within its deadline, and in memory.
    assert took < len(asked) * DEADLINE, (took, served)
    assert peak < MEMORY, (peak, served)
    if case == "endless":  # what stopped it was the size limit
        assert served[0].sent > MAX_PAGE_BYTES, served
    if case == "flip":  # the altered entry was asked for again, alone
        assert any(path.endswith("&limit=1") for path in asked), asked
    [(failures, last_error)] = rows(db, "SELECT failures, last_error FROM peer_sync")
    refusals = [r for (r,) in rows(db, "SELECT reason FROM sync_refusal")]
    if expected is None:
        assert isinstance(result, Round), (result, served)
        assert (failures, last_error, refusals) == (0, None, []), served
        assert pool(db) == calm, served
    else:
        assert isinstance(result, str) and expected in result, (result, served)
        assert failures == 1 and last_error == result[:2000], last_error
        assert refusals == [result[:2000]]

    due_now(db)
    again = synced(settings)
    assert pool(db) == calm, (again, served)
    assert rows(db, "SELECT failures, last_error FROM peer_sync") == [(0, None)]
