"""`integra keys`: this node's Ed25519 signing keys, with fingerprints to read out to a hub."""

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from node.cli.feed import catch_up
from node.console import fail, operator, out, run_in_session, run_or_fail
from node.core.settings import get_settings

keys_app = typer.Typer(help="This node's signing keys (Ed25519).", no_args_is_help=True)


def print_key(key_id: str, public: str) -> None:
    from federation import keys

    out.print(f"  fingerprint {keys.fingerprint(key_id)}\n  public key  {public}")


@keys_app.command("init")
def keys_init() -> None:
    """Create this node's signing key, then bring the feed in step with what was published
    before it existed. Safe to re-run: an existing key is kept and shown."""
    from federation import trust

    settings = get_settings()

    async def _init(session: AsyncSession) -> tuple[str, str, bool]:
        return await trust.create_signing_key(session, settings, by=operator())

    key_id, public, created = run_in_session(_init, settings)
    out.print(("created " if created else "already has ") + f"key {key_id}")
    print_key(key_id, public)
    catch_up(settings)  # what was published before the key existed


@keys_app.command("show")
def keys_show() -> None:
    """Every key this node has had, newest first, with fingerprints to read out to the hub."""
    from federation import trust

    rows = run_in_session(trust.signing_keys)
    if not rows:
        raise fail(trust.NO_KEY_YET)
    for key_id, public, state in rows:
        out.print(f"{key_id} ({state})")
        print_key(key_id, public)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key and announce it, signed by the old key and the new one. The old
    key is retired: subscribers keep trusting what it signed before now."""
    from federation import trust

    settings = get_settings()

    async def _rotate(session: AsyncSession) -> tuple[str, str]:
        return await trust.rotate_signing_key(session, settings, by=operator())

    key_id, public = run_or_fail(_rotate, settings)
    out.print(f"new key {key_id}, announced under the previous one")
    print_key(key_id, public)
    catch_up(settings)
