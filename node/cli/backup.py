"""`integra backup` and `integra restore`: the database, the signing keys and the configuration
file in one archive with a manifest and checksums, optionally sealed with a passphrase
(`node.backup`). The passphrase is read from standard input or the environment, never an
argument."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from node import backup
from node.console import err, fail, out
from node.core.settings import get_settings

PassphraseStdin = Annotated[
    bool,
    typer.Option(
        "--passphrase-stdin",
        help=f"Read the passphrase from standard input (else {backup.PASSPHRASE_ENV}, else a "
        "prompt on a terminal).",
    ),
]


def backup_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The archive to write (default: integra-backup-<country>-<time>.tar.gz here).",
        ),
    ] = None,
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt",
            help="Seal the archive with a passphrase (implied by --passphrase-stdin or "
            f"{backup.PASSPHRASE_ENV}).",
        ),
    ] = False,
    passphrase_stdin: PassphraseStdin = False,
) -> None:
    """Back up this node while it runs: its database (SQLite's online backup, or pg_dump), its
    signing keys and its configuration file, in one archive readable by its owner only. Keep
    it off this machine: without the keys the node must be enrolled again at the hub."""
    settings = get_settings()
    passphrase = _passphrase(passphrase_stdin, ask=encrypt, twice=True)
    path = output or backup.default_name(settings, encrypted=passphrase is not None)
    try:
        made = backup.create(settings, path, passphrase)
    except backup.BackupError as exc:
        raise fail(str(exc)) from None
    manifest = made.manifest
    out.print(f"wrote {made.path}" + (" (encrypted)" if made.encrypted else ""), highlight=False)
    _print_manifest(manifest)
    if settings.country and not any(f["path"].startswith("keys/") for f in manifest["files"]):
        err.print(f"warning: no signing key found in {settings.keys_path}", highlight=False)


def restore_command(
    archive: Annotated[Path, typer.Argument(help="An archive `integra backup` wrote.")],
    passphrase_stdin: PassphraseStdin = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only read and check the archive; change nothing."),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Overwrite a database that already holds a node, differing key files and the "
            "configuration file (the old one is kept as integra.toml.before-restore).",
        ),
    ] = False,
) -> None:
    """Restore a backup onto this node (stopped): the configuration file, the database and the
    signing keys, then migrate the database to this version. The whole archive is checked
    first (checksums; the passphrase): a damaged one, or a wrong passphrase, changes nothing.
    The node keeps its keys and its peers, so the hub takes it up again without enrolment."""
    passphrase = (
        _passphrase(passphrase_stdin, ask=backup.is_sealed(archive)) if archive.is_file() else None
    )
    try:
        if check:
            manifest = backup.verify(archive, passphrase)
            out.print(f"{archive}: intact, every checksum matches", highlight=False)
            _print_manifest(manifest)
            return
        done = backup.restore(archive, passphrase, get_settings(), replace=replace)
    except backup.BackupError as exc:
        raise fail(str(exc)) from None
    out.print(f"restored the backup of {done.manifest['created_at']}", highlight=False)
    out.print(f"  database      {done.database} (migrated to this version)", highlight=False)
    for key in done.keys:
        out.print(f"  signing key   {key}", highlight=False)
    out.print(f"  configuration {done.config}", highlight=False)
    out.print("Start the node; with Meilisearch, run `integra search reindex` first.")


def _passphrase(from_stdin: bool, *, ask: bool, twice: bool = False) -> str | None:
    if from_stdin:
        passphrase = sys.stdin.readline().rstrip("\n")
    elif os.environ.get(backup.PASSPHRASE_ENV):
        passphrase = os.environ[backup.PASSPHRASE_ENV]
    elif ask and sys.stdin.isatty():
        passphrase = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=twice)
    elif ask:
        raise fail(f"a passphrase is needed: --passphrase-stdin or {backup.PASSPHRASE_ENV}")
    else:
        return None
    if not passphrase:
        raise fail("the passphrase is empty")
    return passphrase


def _print_manifest(manifest: dict[str, object]) -> None:
    files = manifest["files"]
    assert isinstance(files, list)
    out.print(
        f"  made by integra {manifest['program_version']} on {manifest['created_at']}, "
        f"{manifest['database']} schema {manifest['schema_revision']}, "
        f"{manifest['role']} {manifest['country'] or ''}".rstrip(),
        highlight=False,
        soft_wrap=True,
    )
    for entry in files:
        out.print(
            f"  {entry['sha256'][:16]}  {entry['size']:>12}  {entry['path']}", highlight=False
        )
