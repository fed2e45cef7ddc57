"""`integra verify`: check a record's chain of signed envelopes offline."""

from typing import Annotated

import typer

from node.cli.files import load_json
from node.console import fail, out


def verify(
    record: Annotated[
        str,
        typer.Argument(
            help="A file or URL: an envelope {payload, key, sig}, or a hub record carrying one."
        ),
    ],
    keys: Annotated[
        list[str],
        typer.Option(
            "--keys",
            help="A file or URL of a keys document "
            "(/federation/v1/keys of the origin, and of the hub "
            "for a hub's envelope); repeat for several.",
        ),
    ],
    directory: Annotated[
        list[str] | None,
        typer.Option(
            "--directory",
            help="A file or URL of a hub's signed directory (/federation/v1/directory), "
            "checked with the hub's keys given with --keys: each node key's window and "
            "revocation then apply.",
        ),
    ] = None,
) -> None:
    """Check a record's envelope chain offline: who signed what, when, with which key, and
    whether the key could sign that entry (its window of sequence numbers, its revocation)."""
    from federation.canonical import CanonicalError
    from federation.verify import (
        apply_directory,
        body_check,
        envelope_of,
        known_keys,
        verify_chain,
    )

    try:
        known = known_keys([load_json(source) for source in keys])
        for source in directory or []:
            known = apply_directory(load_json(source), known)
        envelope = envelope_of(load_json(record))
        links = verify_chain(envelope, known)
        body = body_check(envelope)
    except (OSError, ValueError, CanonicalError) as exc:
        raise fail(str(exc)) from None
    for link in links:
        mark = "valid" if link.valid else f"INVALID: {link.reason}"
        out.print(
            f"{link.record}: signed by {link.signer} at {link.time} with {link.key_id} — {mark}",
            highlight=False,
        )
    if body is not None:
        out.print(f"body: {body[1] if body[0] else 'INVALID: ' + body[1]}", highlight=False)
    if not links or not all(link.valid for link in links) or (body is not None and not body[0]):
        raise typer.Exit(1)
