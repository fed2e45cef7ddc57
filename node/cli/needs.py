"""`integra needs`: record the needs of the registry's organisations, list them, and see them
grouped as the National Point does (the operator at the console acts as an administrator)."""

import json
import uuid
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import fail, operator, out, run_or_fail
from practices.needs.vocabulary import NeedKind, NeedStatus
from practices.vocabulary import InterventionType, Setting
from registry.vocabulary import Area, TargetGroup

needs_app = typer.Typer(
    help="Needs heard: training, tools, guidance, cooperation... of the registry's bodies.",
    no_args_is_help=True,
)
OrganisationOption = Annotated[
    str, typer.Option("--organisation", help="The organisation: its ref or its id.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


async def _organisation_id(session: AsyncSession, given: str) -> uuid.UUID:
    from registry import find_organisation_by_ref, organisation_exists

    try:
        found = uuid.UUID(given)
    except ValueError:
        organisation = await find_organisation_by_ref(session, given.strip())
        if organisation is None:
            raise fail(f"--organisation: no organisation has the ref {given[:80]!r}") from None
        return organisation.id
    if not await organisation_exists(session, found):
        raise fail(f"--organisation: no organisation has the id {found}")
    return found


@needs_app.command("add")
def needs_add(
    organisation: OrganisationOption,
    kind: Annotated[NeedKind, typer.Option(help="What kind of need it is.")],
    description: Annotated[
        str, typer.Option(help="What is needed (stays on this node; never shared).")
    ],
    target_group: Annotated[list[TargetGroup], typer.Option(help="A target group (repeat).")] = [],  # noqa: B006
    setting: Annotated[list[Setting], typer.Option(help="A setting (repeat).")] = [],  # noqa: B006
    area: Annotated[list[Area], typer.Option(help="An area of work (repeat).")] = [],  # noqa: B006
    intervention_type: Annotated[
        list[InterventionType], typer.Option(help="An intervention type (repeat).")
    ] = [],  # noqa: B006
    national: Annotated[
        bool, typer.Option("--national", help="Keep it out of the counts shared with the hub.")
    ] = False,
) -> None:
    """Record a need for an organisation of the registry."""
    from practices.needs import service
    from practices.needs.schemas import NeedCreate

    async def _add(session: AsyncSession) -> str:
        org_id = await _organisation_id(session, organisation)
        try:
            data = NeedCreate(
                organisation_id=org_id,
                kind=kind,
                description=description,
                target_groups=target_group,
                settings=setting,
                areas=area,
                intervention_types=intervention_type,
                shared=not national,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise fail(f"--{where.replace('_', '-')}: {first['msg']}") from None
        need = await service.create_need(session, data, by=operator())
        return str(need.id)

    out.print(f"recorded need {run_or_fail(_add)}", highlight=False)


@needs_app.command("list")
def needs_list(
    organisation: Annotated[
        str | None, typer.Option("--organisation", help="Only this organisation's (ref or id).")
    ] = None,
    kind: Annotated[list[NeedKind], typer.Option(help="Only needs of this kind.")] = [],  # noqa: B006
    status: Annotated[list[NeedStatus], typer.Option(help="Only needs in this status.")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
    as_json: JsonOption = False,
) -> None:
    """Needs, newest first, with their text (personal data may be in it)."""
    from practices.needs import service

    async def _list(session: AsyncSession) -> list[dict[str, Any]]:
        org_id = await _organisation_id(session, organisation) if organisation else None
        rows = await service.list_needs(
            session,
            by=operator(),
            organisation_id=org_id,
            kinds=[str(k) for k in kind],
            statuses=[str(s) for s in status],
            limit=limit,
        )
        return [r.model_dump(mode="json") for r in await service.need_reads(session, rows)]

    needs = run_or_fail(_list)
    if as_json:
        typer.echo(json.dumps({"needs": needs}, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table("id", "organisation", "kind", "terms", "status", "description")
    for need in needs:
        terms = [
            *need["target_groups"],
            *need["settings"],
            *need["areas"],
            *need["intervention_types"],
        ]
        table.add_row(
            need["id"][:8],
            need["organisation"]["name"] or need["organisation"]["id"],
            need["kind"],
            ", ".join(terms),
            need["status"],
            need["description"][:80],
        )
    out.print(table)
    out.print(f"{len(needs)} needs", highlight=False)


@needs_app.command("summary")
def needs_summary(
    status: Annotated[list[NeedStatus], typer.Option(help="Only needs in this status.")] = [],  # noqa: B006
    as_json: JsonOption = False,
) -> None:
    """Needs grouped by kind, organisation and term, with counts (no text)."""
    from practices.needs import service

    async def _summary(session: AsyncSession) -> dict[str, Any]:
        found = await service.summary(session, [str(s) for s in status])
        return found.model_dump(mode="json")

    summary = run_or_fail(_summary)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    out.print(f"{summary['open']} open, {summary['addressed']} addressed", highlight=False)
    kinds = Table("kind", "open", "addressed")
    for row in summary["kinds"]:
        kinds.add_row(row["kind"], str(row["open"]), str(row["addressed"]))
    out.print(kinds)
    groups = Table("kind", "organisation", "term", "open", "addressed")
    for group in summary["groups"]:
        term = f"{group['facet']}: {group['term']}" if group["facet"] else "(all)"
        name = group["organisation"]["name"] or group["organisation"]["id"]
        groups.add_row(group["kind"], name, term, str(group["open"]), str(group["addressed"]))
    out.print(groups)
