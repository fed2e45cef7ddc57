"""Import rules, in-process against both databases: what a re-run, a repeat or a gap does."""

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from node.core.auth import system_principal
from node.core.tabular import FileError, ImportReport
from registry import transfer
from registry.models import Organisation, Protocol

pytestmark = pytest.mark.anyio
BY = system_principal("test-import")
HEADER = "ref,name,kind,sector,level,country"


async def run(session: AsyncSession, text: str, fmt: str = "csv") -> ImportReport:
    rows = transfer.read_rows(text.encode(), fmt)
    return await transfer.import_rows(session, rows, by=BY)


async def stored(session: AsyncSession, ref: str) -> Organisation:
    found = await session.scalar(
        select(Organisation)
        .options(selectinload(Organisation.identifiers))
        .where(Organisation.ref == ref)
    )
    assert found is not None
    return found


async def test_a_failing_row_does_not_lose_the_good_rows_around_it(session: AsyncSession) -> None:
    await run(session, f"{HEADER},identifiers\nid-a,A,ngo,ngo,local,FR,siren:123\n")
    report = await run(
        session,
        f"{HEADER},identifiers\n"
        "id-ok,OK,ngo,ngo,local,FR,\n"
        "id-a,A,ngo,ngo,local,FR,siren:123; rna:W1\n"
        "id-ok2,OK2,ngo,ngo,local,FR,\n"
        'id-bad,"=HYPERLINK(1)",ngo,ngo,local,ZZ,\n',
    )
    assert (report.created, report.updated, len(report.errors)) == (2, 1, 1)
    assert len((await stored(session, "id-a")).identifiers) == 2


async def test_a_record_named_twice_in_one_file_is_refused_the_second_time(
    session: AsyncSession,
) -> None:
    text = f"{HEADER},region\nd-a,Dup,ngo,ngo,local,FR,first\nd-a,Dup,ngo,ngo,local,FR,second\n"
    first = await run(session, text)
    assert first.created == 1 and first.errors[0].row == 3
    assert "the same organisation as organisation 2" in first.errors[0].reason
    again = await run(session, text)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert (await stored(session, "d-a")).region == "first"


async def test_missing_columns_keep_what_is_stored(session: AsyncSession) -> None:
    await run(
        session,
        f"{HEADER},address_street,address_locality,address_postal_code,region\n"
        "ad-1,Addr,ngo,ngo,local,FR,1 rue de la Paix,Paris,75002,IDF\n",
    )
    report = await run(session, f"{HEADER},address_locality\nad-1,Addr,ngo,ngo,local,FR,Lyon\n")
    assert report.updated == 1
    organisation = await stored(session, "ad-1")
    assert (organisation.address_street, organisation.address_locality) == (
        "1 rue de la Paix",
        "Lyon",
    )
    assert (organisation.address_postal_code, organisation.region) == ("75002", "IDF")


async def test_an_unknown_parent_refuses_the_row_whole(session: AsyncSession) -> None:
    report = await run(session, f"{HEADER},parent_ref\nchild-1,Child,ngo,ngo,local,FR,nowhere\n")
    assert report.created == 0 and "nowhere" in report.errors[0].reason
    assert await session.scalar(select(Organisation).where(Organisation.ref == "child-1")) is None


async def test_a_parent_later_in_the_file_is_linked(session: AsyncSession) -> None:
    report = await run(
        session,
        f"{HEADER},parent_ref\n"
        "kid,Kid,probation,governmental,regional,BG,top\n"
        "top,Top,probation,governmental,national,BG,\n",
    )
    assert report.created == 2 and not report.errors
    assert (await stored(session, "kid")).parent_id == (await stored(session, "top")).id


async def test_protocol_reimport_keeps_fields_the_file_leaves_out(session: AsyncSession) -> None:
    orgs = [
        {"ref": r, "name": r, "kind": "ngo", "sector": "ngo", "level": "local", "country": "BG"}
        for r in ("p-a", "p-b")
    ]
    parties = [{"organisation_ref": "p-a", "role": "lead"}, {"organisation_ref": "p-b"}]
    full = {
        "ref": "mou",
        "title": "MoU",
        "country": "BG",
        "parties": parties,
        "status": "in_force",
        "purpose": "Exchange",
        "signed_date": "2019-01-01",
    }
    import json

    await run(session, json.dumps({"organisations": orgs, "protocols": [full]}), "json")
    short = {k: full[k] for k in ("ref", "title", "country", "parties")}
    report = await run(session, json.dumps({"protocols": [short]}), "json")
    assert report.unchanged == 1
    protocol = await session.scalar(select(Protocol).where(Protocol.ref == "mou"))
    assert protocol is not None and (protocol.status, protocol.purpose) == ("in_force", "Exchange")


async def test_csv_export_imports_back_unchanged(session: AsyncSession) -> None:
    await run(
        session,
        f"{HEADER},services,local_names\n"
        'sv-1,"=cmd",ngo,ngo,local,FR,"Counselling\\; family mediation; Housing",'
        '"fr:Édge\\: A\\; B"\n',
    )
    organisations, protocols = await transfer.load_everything(session, with_contacts=False)
    exported = transfer.export_csv(
        transfer.export_document(organisations, protocols, with_contacts=False)
    )
    assert "'=cmd" in exported  # a spreadsheet shows the text instead of running it
    organisation = await stored(session, "sv-1")
    assert organisation.name == "=cmd"
    assert organisation.services == ["Counselling; family mediation", "Housing"]
    report = await run(session, exported)
    assert (report.unchanged, report.errors) == (1, [])


async def test_semicolon_separated_files_and_multiline_cells(session: AsyncSession) -> None:
    text = (
        "ref;name;kind;sector;level;country;description\n"
        'm-1;Multi;ngo;ngo;local;FR;"line one\nline two"\n'
        "m-2;Bad;ngo;ngo;local;XX;\n"
    )
    report = await run(session, text)
    assert report.created == 1
    assert report.errors[0].row == 4  # the bad record starts on line 4


@pytest.mark.parametrize(
    "content",
    [
        '{"organisations": null}',
        '{"organisations": 5}',
        "[" * 5000 + "]" * 5000,
        '{"organisations": [' + "9" * 5000 + "]}",
    ],
)
def test_unusable_json_is_refused_whole_with_a_message(content: str) -> None:
    with pytest.raises(FileError):
        transfer.read_rows(content.encode(), "json")


async def test_a_row_with_a_broken_shape_is_refused_alone(session: AsyncSession) -> None:
    import json

    doc = {
        "organisations": [
            {
                "ref": "fine",
                "name": "Fine",
                "kind": "ngo",
                "sector": "ngo",
                "level": "local",
                "country": "FR",
            }
        ],
        "protocols": [{"title": "Broken", "country": "FR", "parties": 5}],
    }
    report = await run(session, json.dumps(doc), "json")
    assert report.created == 1 and "parties" in report.errors[0].reason
