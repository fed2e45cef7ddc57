"""`integra hub` and `integra mirror`: the peers this node trusts, and signed sync with them.

A hub enrols nodes and pulls their feeds; a node mirrors a hub's aggregate feed. Keys are
exchanged out of band: the commands print fingerprints to compare with the other operator's.
"""

from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import err, fail, operator, out, refusals_fail, run_or_fail, sync_round
from node.core.db import utcnow
from node.core.settings import get_settings

hub_app = typer.Typer(help="The EU hub: enrolled nodes and signed sync.", no_args_is_help=True)
mirror_app = typer.Typer(
    help="Mirror the EU hub's aggregate feed, so this node's practitioners can search the EU "
    "pool even when the hub is down.",
    no_args_is_help=True,
)


def enrol(origin: str, url: str, key_texts: list[str], kind: str) -> None:
    """Trust `origin` at `url` under these keys (as the operator gave them) and say so."""
    from federation import keys, trust

    with refusals_fail():
        public_keys = trust.parse_public_keys(key_texts)

    async def _enrol(session: AsyncSession) -> list[str]:
        return await trust.enrol_peer(
            session, origin=origin, url=url, public_keys=public_keys, kind=kind, by=operator()
        )

    key_ids = run_or_fail(_enrol)
    out.print(
        f"enrolled {origin} at {url}" if kind == "node" else f"mirroring the hub {origin} at {url}"
    )
    for key_id in key_ids:
        out.print(f"  key {key_id}\n  fingerprint {keys.fingerprint(key_id)}")


@hub_app.command("enrol")
def hub_enrol(
    country: Annotated[
        str, typer.Option(help="The node's ISO country code: the only origin it may speak for.")
    ],
    url: Annotated[str, typer.Option(help="The node's base URL, e.g. https://node.example.pt")],
    key: Annotated[
        list[str],
        typer.Option(
            help="A public key of the node (base64url, as "
            "`integra keys show` prints it); repeat for several."
        ),
    ],
) -> None:
    """Enrol a node, or add keys to an enrolled one. Keys are exchanged out of band: compare
    the fingerprints printed here with the node operator's before trusting them."""
    origin = country.upper()
    if len(origin) != 2 or not origin.isalpha():
        raise fail("--country takes an ISO 3166-1 alpha-2 code, e.g. PT")
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://")
    enrol(origin, url, key, kind="node")


@hub_app.command("revoke-key")
def hub_revoke_key(
    key_id: str,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="Revoked from this UTC time (default: now). Entries it signed later are refused."
        ),
    ] = None,
) -> None:
    """Revoke a node's key: what it signed before stays trusted, anything later is refused."""
    from federation import trust

    when = (at.replace(tzinfo=UTC) if at and at.tzinfo is None else at) or utcnow()

    async def _revoke(session: AsyncSession) -> None:
        await trust.revoke_peer_key(session, key_id=key_id, at=when, by=operator())

    run_or_fail(_revoke)
    out.print(f"revoked {key_id} from {when:%Y-%m-%d %H:%M:%S} UTC")


@hub_app.command("sync")
def hub_sync() -> None:
    """Pull every due node's feed now, verify it and apply it. Safe to repeat: what is already
    held is not applied twice, and a failure only delays that node (with backoff)."""
    print_round()


def print_round() -> None:
    """One sync round now: a line per peer; exit 2 if any failed."""
    from federation.sync import Round

    results = sync_round(get_settings())
    failed = False
    for origin, result in sorted(results.items()):
        if isinstance(result, Round):
            out.print(
                f"{origin}: {result.applied} applied, {result.unchanged} unchanged, "
                f"{result.refused} refused"
            )
        else:
            failed = True
            err.print(f"{origin}: failed: {result}", highlight=False)
    if not results:
        out.print("nothing is due (see GET /api/v1/hub/peers)")
    if failed:
        raise typer.Exit(2)


@mirror_app.command("add")
def mirror_add(
    url: Annotated[str, typer.Option(help="The hub's base URL, e.g. https://hub.example.eu")],
    key: Annotated[
        list[str],
        typer.Option(
            help="A public key of the hub (as its `integra keys show` prints it); "
            "repeat for several. Exchange it out of band and compare fingerprints."
        ),
    ],
    origin: Annotated[str, typer.Option(help="The hub's origin code.")] = "EU",
) -> None:
    """Subscribe to a hub's aggregate feed. The hub's signed directory then tells which nodes'
    keys to check inside each relayed record; every record keeps its origin's signature."""
    origin = origin.upper()
    if len(origin) != 2 or not origin.isalpha():
        raise fail("--origin takes a two-letter code, e.g. EU")
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://")
    enrol(origin, url, key, kind="hub")


@mirror_app.command("sync")
def mirror_sync() -> None:
    """Pull the mirrored hub's feed now (a running node also does it on its own every
    INTEGRA_HUB_SYNC_INTERVAL). Safe to repeat."""
    print_round()
