"""`integra config`: one configuration for the server and every command, and the guard that
stops a command from writing as another node would.

The settings are read from the environment, then from the configuration file (`integra.toml` in
the data directory, or the file `INTEGRA_CONFIG` names), then their defaults. `config init`
writes the file from the settings in effect; `config show` says where each one came from.
"""

import json
import os
import secrets
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import ValidationError

from node.console import fail, out
from node.core.settings import (
    CONFIG_ENV,
    PLACEHOLDER_SECRET,
    SECRETS,
    Settings,
    config_path,
    env_names,
    get_settings,
    origin,
)

# Every command runs `refuse_if_node_differs`: the database layer is imported when it is used.
if TYPE_CHECKING:
    from node.core.models import Heartbeat

config_app = typer.Typer(
    help="The node's configuration: one file read by the server, its workers and every command.",
    no_args_is_help=True,
)
# Commands that write nothing through the node's database as a node would (or are the node).
UNGUARDED = frozenset({"serve", "config", "db", "demo", "verify"})
# Accounts and tokens depend on the secret only (it keys the token hashes); every other group
# on every setting of `heartbeat.fingerprint`.
COMPARED = {"user": frozenset({"secret_key"}), "token": frozenset({"secret_key"})}
MASK = "********"


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """Print the effective settings and where each came from (the environment, the
    configuration file, or the default). Secrets are masked."""
    settings = get_settings()
    path = settings.config_file
    values = settings.model_dump(mode="json")
    rows = {name: (shown(name, values[name]), origin(name, path)) for name in values}
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "config_file": str(path),
                    "config_file_exists": path.is_file(),
                    "settings": {n: {"value": v, "from": o} for n, (v, o) in rows.items()},
                }
            )
        )
        return
    found = "" if path.is_file() else "  (none yet: `integra config init` writes it)"
    out.print(f"configuration file: {path}{found}", highlight=False, soft_wrap=True)
    width = max(len(name) for name in rows)
    for name, (value, where) in rows.items():
        text = _text(settings, name, value)
        out.print(f"{name:<{width}}  {text:<40}  {where}", highlight=False, soft_wrap=True)


@config_app.command("init")
def config_init(
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write the configuration file from the settings in effect now (the environment's and the
    defaults; a generated secret key if none is set), so the server and every command on this
    node read the same settings without copying the server's environment. Refuses to replace an
    existing file without --force."""
    settings = get_settings()
    path = settings.config_file
    if path.exists() and not force:
        raise fail(f"{path} exists: `integra config show` shows it; --force replaces it")
    text, generated = render(settings, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o600)  # it holds the secret key, whatever mode it had
    try:
        Settings()  # what was written must read back
    except (ValidationError, ValueError) as exc:
        raise fail(f"{path} was written but does not read back: {exc}") from None
    out.print(f"wrote {path}", highlight=False)
    if generated:
        out.print("secret_key: generated (tokens issued with the placeholder stop working)")
    where = (
        f"{CONFIG_ENV}={path}"
        if os.environ.get(CONFIG_ENV)
        else f"INTEGRA_DATA_DIR={path.parent} (or from {path.parent.parent})"
    )
    out.print(
        f"The server, its workers and every `integra` command run with {where} read it; "
        "a setting in the environment still wins (`integra config show`).",
        highlight=False,
        soft_wrap=True,
    )


def _text(settings: Settings, name: str, value: Any) -> str:
    if name == "data_dir":
        return str(settings.data_dir.resolve())
    if name == "keys_dir" and value is None:
        return f"(not set: {settings.keys_path})"
    if name == "database_url" and value is None:
        return f"(not set: sqlite:///{settings.data_dir.resolve() / 'node.db'})"
    if isinstance(value, bool):
        return toml_value(value)
    return "(not set)" if value is None else str(value)


def shown(name: str, value: Any) -> Any:
    """A value as it may be printed: secrets masked, passwords in URLs too."""
    if value is None:
        return None
    if name in SECRETS:
        return f"{MASK} (the placeholder)" if value == PLACEHOLDER_SECRET else MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def render(settings: Settings, path: Path) -> tuple[str, bool]:
    """The file's text: each setting with its description, set when it does not come from its
    default, commented out when it does. Returns it, and whether a secret key was generated."""
    from node.core.db import utcnow

    values = settings.model_dump(mode="json")
    generated = settings.secret_key == PLACEHOLDER_SECRET
    if generated:
        values["secret_key"] = secrets.token_urlsafe(48)
    lines = [
        "# Integra Exchange: this node's configuration. `integra serve`, its Celery workers and",
        "# every `integra` command read it; a setting in the environment still wins (INTEGRA_",
        "# and the name in capitals, e.g. INTEGRA_COUNTRY). `integra config show` prints the",
        "# settings in effect and where each comes from. A commented line is the default.",
        f"# Written by `integra config init` on {utcnow():%Y-%m-%d %H:%M} UTC.",
    ]
    in_data_dir = not os.environ.get(CONFIG_ENV)
    for name, field in Settings.model_fields.items():
        if name == "data_dir" and in_data_dir:
            continue  # the file is in the data directory: it cannot move it
        lines += [
            "",
            *textwrap.wrap(str(field.description), 98, initial_indent="# ", subsequent_indent="# "),
        ]
        value = values[name]
        live = origin(name, path) != "default" or (name == "secret_key" and generated)
        if value is None:
            lines.append(f"# {name} =")
        else:
            lines.append(f"{'' if live else '# '}{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n", generated


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # JSON's string escapes are TOML's basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def refuse_if_node_differs(settings: Settings, group: str | None = None) -> None:
    """Stop a command whose database a running node serves with other settings: what it wrote
    would not be what that node writes (a practice imported without the node's country never
    reaches its feed; a key made in another directory is never found)."""
    from sqlalchemy.engine import make_url

    url = settings.sqlalchemy_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return  # no database yet, so nothing serves it
    from sqlalchemy.orm import Session

    from node.core import heartbeat
    from node.core.db import create_sync_engine

    engine = create_sync_engine(url)
    try:
        with Session(engine) as session:
            servers = heartbeat.live(session, heartbeat.SERVER)
    except Exception:
        return  # no heartbeat table yet, or no database: the command itself says what is wrong
    finally:
        engine.dispose()
    compared = COMPARED.get(group or "")
    here = heartbeat.fingerprint(settings)
    for server in servers:
        there = server.detail.get("settings", {})
        if compared is not None:
            here, there = _only(here, compared), _only(there, compared)
        said = heartbeat.differences(here, there, where="on the node")
        if said:
            raise fail(refusal(server, said))


def _only(values: dict[str, str], names: frozenset[str]) -> dict[str, str]:
    return {name: value for name, value in values.items() if name in names}


def refusal(server: "Heartbeat", said: list[str]) -> str:
    from node.core.db import utcnow

    seen = _ago(utcnow() - server.beat_at)
    file = server.detail.get("config_file") or "?"
    return (
        f"a node serving this database ({server.id}, seen {seen} ago) runs with other "
        "settings:\n  " + "\n  ".join(said) + "\nThis command would write as another node "
        f"would. Run it with the node's configuration (its file: {file}; `integra config "
        "show` says where each setting comes from here), or stop the node first."
    )


def _ago(delta: timedelta) -> str:
    return f"{max(0, int(delta.total_seconds()))} s"


def explain(exc: ValidationError) -> list[str]:
    """Each bad setting named as the operator wrote it: the variable, or the file's key."""
    path = config_path()
    said = []
    for error in exc.errors():
        name = next((str(part) for part in error["loc"]), "")
        field = _field_of(name)
        if field is None:
            said.append(f"bad setting: {error['msg']}")
            continue
        where = origin(field, path)
        label = f"{field} in {where}" if where.startswith("/") else env_names(field)[0]
        said.append(f"bad setting: {label}: {error['msg']}")
    return said


def _field_of(name: str) -> str | None:
    for field in Settings.model_fields:
        if name.lower() == field or name.upper() in env_names(field):
            return field
    return None
