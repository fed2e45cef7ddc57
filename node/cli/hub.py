"""`integra hub` and `integra mirror`: the peers this node trusts, and signed sync with them.

A hub enrols nodes and pulls their feeds; a node mirrors a hub's aggregate feed. Keys are
exchanged out of band: the commands print fingerprints to compare with the other operator's.
"""

from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import err, fail, operator, out, refusals_fail, run_or_fail, sync_round
from node.core.settings import get_settings

hub_app = typer.Typer(help="The EU hub: enrolled nodes and signed sync.", no_args_is_help=True)
mirror_app = typer.Typer(
    help="Mirror the EU hub's aggregate feed, so this node's practitioners can search the EU "
    "pool even when the hub is down.",
    no_args_is_help=True,
)


def enrol(
    origin: str, url: str, key_texts: list[str], kind: str, auto_rotate: bool | None = None
) -> None:
    """Trust `origin` at `url` under these keys (as the operator gave them) and say so."""
    from federation import keys, trust

    with refusals_fail():
        public_keys = trust.parse_public_keys(key_texts)

    async def _enrol(session: AsyncSession) -> list[str]:
        return await trust.enrol_peer(
            session,
            origin=origin,
            url=url,
            public_keys=public_keys,
            kind=kind,
            auto_rotate=auto_rotate,
            allow_insecure=get_settings().allow_insecure_peers,
            by=operator(),
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
    auto_rotate: Annotated[
        bool | None,
        typer.Option(
            "--auto-rotate/--confirm-rotations",
            help="Trust the node's key rotations (signed by its old key and its new one) "
            "without `integra hub confirm-key`. Default on first enrolment: confirm each.",
        ),
    ] = None,
) -> None:
    """Enrol a node, or add keys to an enrolled one. Keys are exchanged out of band: compare
    the fingerprints printed here with the node operator's before trusting them."""
    origin = country.upper()
    if len(origin) != 2 or not origin.isalpha():
        raise fail("--country takes an ISO 3166-1 alpha-2 code, e.g. PT")
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://")
    enrol(origin, url, key, kind="node", auto_rotate=auto_rotate)


@hub_app.command("trust")
def hub_trust(
    url: Annotated[str, typer.Argument(help="The hub's base URL, e.g. https://hub.example.eu")],
    fingerprint: Annotated[
        str,
        typer.Option(
            help="The fingerprint of the hub's signing key, as its operator reads it out "
            "(`integra keys show` on the hub)."
        ),
    ],
) -> None:
    """(On a node) Let the hub read this node's `network` entries: the hub signs its requests
    for the feed with its key, and this node serves those entries whole to it alone (anyone
    else gets them without their bodies). A node that mirrors the hub (`integra mirror add`)
    trusts it already. Safe to repeat."""
    from federation import keys, trust

    settings = get_settings()
    with refusals_fail():
        origin, key = trust.hub_key_at(
            url, fingerprint, allow_insecure=settings.allow_insecure_peers
        )

    async def _trust(session: AsyncSession) -> str:
        return await trust.trust_hub(session, origin=origin, url=url, key=key, by=operator())

    key_id = run_or_fail(_trust)
    out.print(f"trusting the hub {origin} at {url} to read this node's network entries")
    out.print(f"  key {key_id}\n  fingerprint {keys.fingerprint(key_id)}")


@hub_app.command("keys")
def hub_keys() -> None:
    """Every peer's keys: trusted, awaiting confirmation (a rotation), or revoked."""
    from federation import keys, trust

    for info in run_or_fail(trust.peer_keys):
        came = f"\trotated from {info.introduced_by}" if info.introduced_by else ""
        seen = keys.fingerprint(info.key_id)
        typer.echo(f"{info.origin}\t{info.key_id}\t{info.state}\tfingerprint {seen}{came}")


@hub_app.command("revoke-key")
def hub_revoke_key(
    key_id: str,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="Ignored, kept for old scripts: a revocation is bound to what this hub has "
            "accepted of the node's feed, never to a time.",
            hidden=True,
        ),
    ] = None,
) -> None:
    """Revoke a peer's key at what this program has accepted of its feed so far: what it
    accepted stays, every later entry the key signs is refused whatever time it claims, and
    so are those of every key it introduced by rotation. Safe to repeat."""
    from federation import trust

    async def _revoke(session: AsyncSession) -> list[trust.Revoked]:
        return await trust.revoke_peer_key(session, key_id=key_id, by=operator())

    if at is not None:
        err.print("note: --at is ignored: the revocation is bound to the entries accepted so far")
    for revoked in run_or_fail(_revoke):
        out.print(
            f"revoked {revoked.key_id} after seq {revoked.seq}"
            f" (checkpoint size {revoked.size}): later entries it signs are refused",
            highlight=False,
        )


@hub_app.command("confirm-key")
def hub_confirm_key(
    key_id: str,
    fingerprint: Annotated[
        str,
        typer.Option(
            help="The new key's fingerprint as the node's operator reads it out "
            "(`integra keys show` on the node)."
        ),
    ],
) -> None:
    """Trust a key a node's rotation announced, once its fingerprint matches the one its
    operator gave out of band; the entries that waited for it are taken at the next round."""
    from federation import trust

    async def _confirm(session: AsyncSession) -> str:
        return await trust.confirm_peer_key(
            session, key_id=key_id, fingerprint=fingerprint, by=operator()
        )

    origin = run_or_fail(_confirm)
    out.print(f"confirmed {key_id} for {origin}: its entries are taken at the next round")


@hub_app.command("sync")
def hub_sync() -> None:
    """Pull every due node's feed now, verify it and apply it. Safe to repeat: what is already
    held is not applied twice, and a failure only delays that node (with backoff)."""
    print_round()


def print_round() -> None:
    """One sync round now: a line per peer; exit 2 if any failed or is stale."""
    from federation.sync import Round

    results = sync_round(get_settings())
    failed = False
    for origin, result in sorted(results.items()):
        if isinstance(result, Round):
            out.print(
                f"{origin}: {result.applied} applied, {result.unchanged} unchanged, "
                f"{result.refused} refused"
            )
            if result.withheld:
                err.print(
                    f"{origin}: {result.withheld} network entries withheld: {origin} does not"
                    " recognise this program as a reader (a node: `integra hub trust` or"
                    " `integra mirror add` there; a hub: enrol this node there)",
                    highlight=False,
                )
            if result.stale:
                failed = True
                err.print(f"{origin}: stale: {result.stale}", highlight=False)
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
    keys to check inside each relayed record; every record keeps its origin's signature. The
    hub is then also trusted to read this node's `network` entries (as `integra hub trust`);
    this node signs its pulls with its own key, so that a hub which enrols it serves it the
    `network` records (a hub which does not: the public ones only)."""
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
