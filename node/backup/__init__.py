"""Backups of a node: its database, its signing keys and its configuration file in one archive.

The archive is a gzipped tar whose first member, `manifest.json`, lists every other member with
its size and SHA-256; it may be sealed with a passphrase (scrypt, then AES-256-GCM in 1 MiB
chunks, each bound to its place and the last one marked, so a cut or altered file never opens).
The database is copied while the node runs: SQLite through its online backup API, PostgreSQL
through `pg_dump` (custom format). A restore reads and checks the whole archive into a private
directory before it writes anything, so a damaged archive or a wrong passphrase changes nothing.
"""

import hashlib
import hmac
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from node import migrations
from node.backup import seal
from node.core import heartbeat
from node.core.db import create_sync_engine, utcnow
from node.core.settings import CONFIG_ENV, ConfigFileError, Settings, sync_url

FORMAT = "integra-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PASSPHRASE_ENV = "INTEGRA_BACKUP_PASSPHRASE"
MIN_PASSPHRASE = 12
CHUNK = 1 << 20
SQLITE_MEMBER = "database/node.db"
POSTGRES_MEMBER = "database/postgresql.dump"


class BackupError(Exception):
    """Said to the operator as it is: what is wrong and what to do."""


@dataclass
class Made:
    path: Path
    manifest: dict[str, Any]
    encrypted: bool


@dataclass
class Restored:
    manifest: dict[str, Any]
    database: str
    keys: list[str] = field(default_factory=list)
    config: str = ""


# --- making a backup --------------------------------------------------------------------------


def default_name(settings: Settings, *, encrypted: bool) -> Path:
    label = settings.country or settings.role.value
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Path(f"integra-backup-{label}-{stamp}.tar.gz" + (".enc" if encrypted else ""))


def create(settings: Settings, output: Path, passphrase: str | None = None) -> Made:
    """Write a backup of this node to `output` (never over an existing file), readable by its
    owner only. The database first, then the keys: a key made in between is kept, not lost."""
    if output.exists():
        raise BackupError(f"{output} exists: name another file")
    if passphrase is not None:
        check_passphrase(passphrase)
    output.parent.mkdir(parents=True, exist_ok=True)
    with _private_dir(output.parent) as staging:
        files = _stage(settings, staging)
        manifest = _manifest(settings, staging, files)
        partial = output.with_name(f".{output.name}.partial")
        try:
            _write_archive(partial, staging, manifest, passphrase)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    return Made(path=output, manifest=manifest, encrypted=passphrase is not None)


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")


def _stage(settings: Settings, staging: Path) -> list[str]:
    url = settings.sqlalchemy_url
    (staging / "database").mkdir(mode=0o700)
    if backend(url) == "sqlite":
        _copy_sqlite(sqlite_path(url), staging / SQLITE_MEMBER)
        files = [SQLITE_MEMBER]
    else:
        _pg_dump(url, staging / POSTGRES_MEMBER)
        files = [POSTGRES_MEMBER]
    keys = settings.keys_path
    if keys.is_dir():
        for path in sorted(p for p in keys.rglob("*") if p.is_file()):
            name = f"keys/{path.relative_to(keys).as_posix()}"
            _copy_private(path, staging / name)
            files.append(name)
    if settings.config_file.is_file():
        _copy_private(settings.config_file, staging / "config/integra.toml")
        files.append("config/integra.toml")
    return files


def _manifest(settings: Settings, staging: Path, files: list[str]) -> dict[str, Any]:
    from node.api import package_version

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": utcnow().isoformat(),
        "program_version": package_version(),
        "database": backend(settings.sqlalchemy_url),
        "schema_revision": _schema_revision(settings.sqlalchemy_url),
        "role": settings.role.value,
        "country": settings.country,
        "files": [
            {
                "path": name,
                "size": (staging / name).stat().st_size,
                "sha256": sha256(staging / name),
            }
            for name in files
        ],
    }


def _schema_revision(url: str) -> str | None:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return migrations.current_revision(connection)
    finally:
        engine.dispose()


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the node writes."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    _private_file(target)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def _pg_dump(url: str, target: Path) -> None:
    _private_file(target)
    name = _pg_name(url)
    command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges"]
    _run_pg([*command, "--file", str(target), name], url)


def _write_archive(
    path: Path, staging: Path, manifest: dict[str, Any], passphrase: str | None
) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        sealer = seal.Sealer(raw, passphrase) if passphrase is not None else None
        sink = cast(IO[bytes], sealer) if sealer is not None else raw
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(data), 0o600, int(utcnow().timestamp())
            tar.addfile(info, io.BytesIO(data))
            for entry in manifest["files"]:
                tar.add(staging / entry["path"], arcname=entry["path"], recursive=False)
        if sealer is not None:
            sealer.finish()
        raw.flush()
        os.fsync(raw.fileno())


# --- reading and checking a backup ------------------------------------------------------------


def is_sealed(archive: Path) -> bool:
    with archive.open("rb") as file:
        return file.read(len(seal.MAGIC)) == seal.MAGIC


@contextmanager
def opened(
    archive: Path, passphrase: str | None, *, near: Path
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The archive read and checked into a private directory (beside `near`): its manifest,
    every file it lists and nothing else, each with its size and checksum. Removed afterwards."""
    if not archive.is_file():
        raise BackupError(f"no file at {archive}")
    sealed = is_sealed(archive)
    if sealed and passphrase is None:
        raise BackupError(
            f"{archive} is encrypted: give its passphrase (--passphrase-stdin or {PASSPHRASE_ENV})"
        )
    with _private_dir(near) as staging, archive.open("rb") as raw:
        try:
            source = cast(IO[bytes], seal.Opener(raw, passphrase or "")) if sealed else raw
            manifest = _extract(source, staging)
        except seal.WrongPassphrase:
            raise BackupError("wrong passphrase (nothing was restored)") from None
        except seal.Altered:
            raise BackupError(
                f"{archive} was altered, cut or damaged: a part fails its check "
                "(nothing was restored)"
            ) from None
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise BackupError(f"{archive} is not a readable backup: {exc}") from None
        yield staging, manifest


def _extract(source: IO[bytes], staging: Path) -> dict[str, Any]:
    with tarfile.open(fileobj=source, mode="r|*") as tar:
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isfile():
            raise BackupError("not an Integra backup: it does not start with manifest.json")
        manifest = _read_manifest(tar.extractfile(first))
        expected = {entry["path"]: entry for entry in manifest["files"]}
        seen: set[str] = set()
        while (member := tar.next()) is not None:  # a stream: each member once
            entry = expected.get(member.name)
            if entry is None or member.name in seen or not member.isfile():
                raise BackupError(f"the archive holds {member.name!r}, which its manifest lacks")
            seen.add(member.name)
            _receive(tar.extractfile(member), staging / member.name, entry)
    missing = sorted(expected.keys() - seen)
    if missing:
        raise BackupError(f"the archive lacks {', '.join(missing)}, listed in its manifest")
    return manifest


def _read_manifest(file: IO[bytes] | None) -> dict[str, Any]:
    try:
        manifest = json.loads(file.read() if file else b"")
    except ValueError:
        raise BackupError("its manifest.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not an Integra backup (manifest.json names another format)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format {manifest.get('format_version')} is not one this version reads"
        )
    for entry in manifest.get("files", []):
        name = str(entry.get("path", ""))
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or parts[0] not in LISTED:
            raise BackupError(f"its manifest lists {name!r}: not a place a backup writes")
    return manifest


LISTED = frozenset({"database", "keys", "config"})


def _receive(file: IO[bytes] | None, target: Path, entry: dict[str, Any]) -> None:
    if file is None:
        raise BackupError(f"{entry['path']} cannot be read from the archive")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    with _private_file(target).open("wb") as out:
        while block := file.read(CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    if size != entry["size"] or not hmac.compare_digest(digest.hexdigest(), entry["sha256"]):
        raise BackupError(
            f"checksum mismatch on {entry['path']}: the archive was altered or damaged "
            "(nothing was restored)"
        )


def verify(archive: Path, passphrase: str | None) -> dict[str, Any]:
    """Read and check the whole archive, writing nothing that stays."""
    with opened(archive, passphrase, near=Path(tempfile.gettempdir())) as (_, manifest):
        return manifest


# --- restoring --------------------------------------------------------------------------------


def restore(
    archive: Path, passphrase: str | None, settings: Settings, *, replace: bool = False
) -> Restored:
    """Put a backup back: the configuration file (when this node has none), the database, the
    signing keys; then migrate the database to this version's schema. Everything is checked
    before the first write."""
    data_dir = settings.data_dir.resolve()
    near = data_dir if data_dir.is_dir() else Path(tempfile.gettempdir())
    with opened(archive, passphrase, near=near) as (staging, manifest):
        names = {entry["path"] for entry in manifest["files"]}
        target = _settings_after(staging, settings, names, replace=replace)
        url = target.sqlalchemy_url
        _preflight(manifest, target, staging, names, replace=replace)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = _restore_config(staging, settings, names, replace=replace)
        done = Restored(manifest=manifest, database="", config=config)
        if backend(url) == "sqlite":
            _put_sqlite(staging / SQLITE_MEMBER, sqlite_path(url))
            done.database = f"SQLite file {sqlite_path(url)}"
        else:
            _pg_restore(staging / POSTGRES_MEMBER, url)
            done.database = f"PostgreSQL database {_pg_name(url)}"
        done.keys = _put_keys(staging, target.keys_path, names)
        migrations.upgrade(url)
        _forget_processes(url)
        return done


def _settings_after(
    staging: Path, settings: Settings, names: set[str], *, replace: bool
) -> Settings:
    """The settings the node will have once the backup's configuration file is in place (the
    database and keys to restore into), read before anything is written."""
    kept = settings.config_file.is_file() and not replace
    if "config/integra.toml" not in names or kept:
        return settings
    before = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(staging / "config/integra.toml")
    try:
        return Settings(data_dir=settings.data_dir)
    except (ValueError, ConfigFileError) as exc:  # pydantic's ValidationError is a ValueError
        raise BackupError(f"the backup's integra.toml does not read here: {exc}") from None
    finally:
        if before is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = before


def _restore_config(staging: Path, settings: Settings, names: set[str], *, replace: bool) -> str:
    if "config/integra.toml" not in names:
        return "no configuration file in the backup"
    source, target = staging / "config/integra.toml", settings.config_file
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return f"{target} already as in the backup"
    if target.is_file() and not replace:
        beside = target.with_name(target.name + ".from-backup")
        _copy_private(source, beside)
        return f"kept {target}; the backup's is at {beside} (--replace puts it in place)"
    if target.is_file():
        _copy_private(target, target.with_name(target.name + ".before-restore"))
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _copy_private(source, target)
    return f"restored {target}"


def _preflight(
    manifest: dict[str, Any], settings: Settings, staging: Path, names: set[str], *, replace: bool
) -> None:
    url = settings.sqlalchemy_url
    kind = backend(url)
    if manifest.get("database") != kind:
        raise BackupError(
            f"the backup holds a {manifest.get('database')} database and this node uses {kind}: "
            "restore it to a node on the same database system"
        )
    _known_revision(manifest.get("schema_revision"))
    if _holds_a_node(url):
        live = _live_processes(url)
        if live:
            raise BackupError(
                f"a node is running on {_where(url)} ({', '.join(live)}): stop it first"
            )
        if not replace:
            raise BackupError(
                f"{_where(url)} already holds a node's data: --replace overwrites it "
                "(make a backup of it first)"
            )
    keys = settings.keys_path
    for name in sorted(n for n in names if n.startswith("keys/")):
        present = keys / name.removeprefix("keys/")
        if present.is_file() and not replace:
            if present.read_bytes() != (staging / name).read_bytes():
                raise BackupError(f"{present} exists and differs from the backup's: --replace")


def _known_revision(revision: str | None) -> None:
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(migrations.alembic_config()).get_revision(revision)
    except CommandError:
        raise BackupError(
            f"the backup's schema ({revision}) is newer than this version knows: install the "
            "version that made it (or a later one), then restore"
        ) from None


def _holds_a_node(url: str) -> bool:
    if backend(url) == "sqlite" and not sqlite_path(url).is_file():
        return False
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    except Exception as exc:
        raise BackupError(f"cannot reach {_where(url)}: {type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()


def _live_processes(url: str) -> list[str]:
    engine = create_sync_engine(url)
    try:
        with Session(engine) as session:
            beats = heartbeat.live(session, heartbeat.SERVER) + heartbeat.live(
                session, heartbeat.WORKER
            )
            return [beat.id for beat in beats]
    except Exception:
        return []  # no heartbeat table: nothing has run on it
    finally:
        engine.dispose()


def _forget_processes(url: str) -> None:
    """The restored heartbeats are the old machine's processes: none of them runs here."""
    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM heartbeat"))
    finally:
        engine.dispose()


def _pg_restore(dump: Path, url: str) -> None:
    """In one transaction: a failure leaves the database as it was."""
    command = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    command += ["--single-transaction", "--exit-on-error", "--dbname", _pg_name(url)]
    _run_pg([*command, str(dump)], url)


def _put_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, _private_file(fresh))
    with fresh.open("rb") as file:
        os.fsync(file.fileno())
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(fresh, target)


def _put_keys(staging: Path, keys: Path, names: set[str]) -> list[str]:
    put = []
    for name in sorted(n for n in names if n.startswith("keys/")):
        target = keys / name.removeprefix("keys/")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = target.with_name(f".{target.name}.restoring")
        _copy_private(staging / name, fresh)
        os.replace(fresh, target)
        put.append(str(target))
    if put:
        os.chmod(keys, 0o700)
    return put


# --- databases --------------------------------------------------------------------------------


def backend(url: str) -> str:
    return make_url(sync_url(url)).get_backend_name()


def sqlite_path(url: str) -> Path:
    return Path(make_url(sync_url(url)).database or "").resolve()


def _where(url: str) -> str:
    return (
        f"SQLite file {sqlite_path(url)}"
        if backend(url) == "sqlite"
        else f"database {_pg_name(url)}"
    )


def _pg_name(url: str) -> str:
    return make_url(sync_url(url)).database or "postgres"


def _run_pg(command: list[str], url: str) -> None:
    """A PostgreSQL client tool, the connection given in its environment (a password never
    appears on a command line)."""
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{command[0]} not found: install the PostgreSQL client tools "
            "(Debian: postgresql-client, the server's major version or newer)"
        )
    parsed = make_url(sync_url(url))
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
    ):
        if value is not None:
            env[variable] = str(value)
    for key, given in parsed.query.items():  # sslmode=require, and the like
        env[f"PG{key.upper()}"] = given if isinstance(given, str) else given[0]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-3:]
        raise BackupError(f"{command[0]} failed: " + " / ".join(said))


# --- files ------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _private_dir(parent: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=".integra-backup-", dir=parent))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _private_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return path


def _copy_private(source: Path, target: Path) -> None:
    shutil.copyfile(source, _private_file(target))
