"""Signed-sync benchmark: hub import throughput, and an incremental round on a large feed.

    python bench/sync.py [--records 25000] [--incremental-size 100000] [--profile] [--quick]

Generates, for FR, PT, BG and GR, a node database (SQLite, migrated) with a signing key and N
feed entries of shared practices (valid `SharedPractice` bodies built from the sample
practices' sentences in French, Portuguese, Bulgarian, Greek and English, numbers and legal
references included, meant to pass the hub's personal-data gate), appended through
`federation.feed.append`. Starts one real node process per country (`python -m node serve`),
enrols them on a fresh hub database (a hub with its own key, which relays what it accepts) and
times one `federation.sync.run_round`: the hub's import of every entry, as `integra hub sync`
does it (peers side by side in up to `Settings.sync_workers` processes: one per core, up to
4), then apart the search index's catch-up that follows it; the import's CPU time, all its
processes together, is printed too. The baseline, in the same
run, is the bare cost of checking the same signatures on the same entries fetched from the feeds:
`keys.verify(public, canonical(payload), sig)`, then without the canonicalisation, then the
Ed25519 check alone. Then a node with a larger feed, already synced by its own hub, gets 10
edits (new versions of existing records) and one more round is timed. `--profile` imports the
four feeds once more into another fresh hub under cProfile and prints where the time goes.
Nothing here is a pass/fail test: it prints figures.
"""

import argparse
import contextlib
import cProfile
import hashlib
import io
import itertools
import json
import os
import pstats
import random
import re
import resource
import shutil
import signal
import socket
import subprocess

# ruff: noqa: E402 - the project imports after the sys.path fix.
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.canonical import canonical
from federation.models import NodeKey, Peer, PeerKey, SyncRefusal
from federation.pool import catch_up_index
from federation.projection import SharedPractice
from federation.sync import HUB_GATE, Round, run_round
from node import migrations
from node.core.db import create_sync_engine
from node.core.settings import Settings
from practices.search import make_backend
from practices.vocabulary import (
    EvaluationType,
    Ideology,
    InterventionType,
    Licence,
    OrganisationRole,
    OutcomeRating,
    PracticeKind,
    ProcessFocus,
    ReviewLabel,
    Setting,
)
from registry.vocabulary import TargetGroup

ROOT = Path(__file__).resolve().parents[1]
ORIGINS = ("FR", "PT", "BG", "GR")
LOCAL_LANGUAGE = {"FR": "fr", "PT": "pt", "BG": "bg", "GR": "el"}
PLACES = {
    "FR": "Paris Marseille Lyon Lille Toulouse Bordeaux Rennes Strasbourg Nantes Fresnes",
    "PT": "Lisboa Porto Coimbra Braga Faro Évora Setúbal Funchal Leiria Viseu",
    "BG": "София Пловдив Варна Бургас Русе Плевен Стара_Загора Враца Ловеч Сливен",
    "GR": "Αθήνα Θεσσαλονίκη Πάτρα Κορυδαλλός Ηράκλειο Λάρισα Βόλος Ιωάννινα Χανιά Τρίκαλα",
}
# Sentences with figures, as real descriptions have them: years, counts and legal references
# make the gate's phone-number and identity-number scans do their real work.
NUMBERED = {
    "en": [
        "Between {y1} and {y2}, {n} participants took part in {m} group sessions.",
        "The programme rests on Law {a}/{y1} and was evaluated in {y2}.",
        "In {y2} the team followed {n} people, {m} of them after release.",
    ],
    "fr": [
        "Entre {y1} et {y2}, {n} personnes ont été suivies, dont {m} en milieu ouvert.",
        "Le dispositif s'appuie sur la loi n° {a}-{m} du {d} mars {y1}.",
        "En {y2}, {n} séances collectives ont réuni {m} participants.",
    ],
    "pt": [
        "Entre {y1} e {y2}, {n} reclusos participaram em {m} sessões de grupo.",
        "O programa assenta na Lei n.º {a}/{y1} e foi avaliado em {y2}.",
        "Em {y2}, a equipa acompanhou {n} pessoas, {m} das quais após a libertação.",
    ],
    "bg": [
        "Между {y1} и {y2} г. в програмата са участвали {n} лица в {m} групови сесии.",
        "Програмата се основава на Закона от {y1} г. и е оценена през {y2} г.",
        "През {y2} г. екипът е работил с {n} души, {m} от тях след освобождаване.",
    ],
    "el": [
        "Από το {y1} έως το {y2} συμμετείχαν {n} κρατούμενοι σε {m} ομαδικές συνεδρίες.",
        "Το πρόγραμμα βασίζεται στον Ν. {a}/{y1} και αξιολογήθηκε το {y2}.",
        "Το {y2} η ομάδα παρακολούθησε {n} άτομα, {m} από αυτά μετά την αποφυλάκιση.",
    ],
}
TEXT_FIELDS = (
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "sustainability",
    "transferability",
    "lessons_learned",
)
OPTIONAL_TEXTS = {
    "problem_addressed": (0.8, 1, 2),
    "rationale": (0.8, 1, 2),
    "staffing": (0.4, 1, 1),
    "intensity_duration": (0.4, 1, 1),
    "resources_funding": (0.3, 1, 1),
    "sustainability": (0.5, 1, 2),
    "transferability": (0.5, 1, 2),
    "lessons_learned": (0.5, 1, 3),
}


# --- realistic shared practices ------------------------------------------------------------


@dataclass
class Corpus:
    """Sentences and titles of the sample practices by language; public body names by country."""

    sentences: dict[str, list[str]] = field(default_factory=dict)
    titles: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Corpus":
        corpus = cls()
        sample = json.loads((ROOT / "practices/sample_data/practices.json").read_text())
        for practice in sample["practices"]:
            lang = practice["language"]
            corpus.titles.setdefault(lang, []).append(practice["title"])
            for name in TEXT_FIELDS:
                for sentence in re.split(r"(?<=[.;!?])\s+", practice.get(name) or ""):
                    if len(sentence) > 20:
                        corpus.sentences.setdefault(lang, []).append(sentence)
        registry = json.loads((ROOT / "registry/sample_data/registry.json").read_text())
        for org in registry["organisations"]:
            corpus.bodies.setdefault(org["country"], []).append(org["name"])
        return corpus


def _numbered(rng: random.Random, lang: str) -> str:
    y1 = rng.randint(2005, 2022)
    return rng.choice(NUMBERED[lang]).format(
        y1=y1,
        y2=y1 + rng.randint(1, 4),
        n=rng.randint(12, 900),
        m=rng.randint(3, 80),
        a=rng.randint(40, 4900),
        d=rng.randint(1, 28),
    )


def _prose(rng: random.Random, corpus: Corpus, lang: str, low: int, high: int) -> str:
    sentences = rng.sample(corpus.sentences[lang], rng.randint(low, high))
    if rng.random() < 0.15:  # about as often as in the sample data (4 in 10 descriptions)
        sentences.insert(rng.randint(0, len(sentences)), _numbered(rng, lang))
    return " ".join(sentences)


def _codes(rng: random.Random, vocabulary: Any, low: int, high: int) -> list[str]:
    return sorted(rng.sample([v.value for v in vocabulary], rng.randint(low, high)))


def practice_body(rng: random.Random, corpus: Corpus, origin: str) -> dict[str, Any]:
    """A shared practice as a node's feed carries it (allow-listed, defaults filled in)."""
    local = LOCAL_LANGUAGE[origin]
    lang = local if rng.random() < 0.7 else "en"
    place = rng.choice(PLACES[origin].split()).replace("_", " ")
    start = date(2008, 1, 1) + timedelta(days=rng.randint(0, 5500))
    values: dict[str, Any] = {
        "kind": rng.choice(list(PracticeKind)).value,
        "title": f"{rng.choice(corpus.titles[lang])} — {place}"[:300],
        "language": lang,
        "summary": _prose(rng, corpus, lang, 1, 2),
        "description": _prose(rng, corpus, lang, 3, 7),
        "intervention_types": _codes(rng, InterventionType, 1, 4),
        "process_focus": _codes(rng, ProcessFocus, 1, 2),
        "settings": _codes(rng, Setting, 1, 3),
        "target_groups": _codes(rng, TargetGroup, 1, 3),
        "ideologies": _codes(rng, Ideology, 0, 2),
        "organisations": [
            {"name": name, "country": origin, "role": rng.choice(list(OrganisationRole)).value}
            for name in rng.sample(corpus.bodies[origin], rng.randint(1, 3))
        ],
        "country": origin,
        "geographical_scope": rng.choice(["national", "regional", "local"]),
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=rng.randint(180, 2000))).isoformat()
        if rng.random() < 0.3
        else None,
        "evaluation": _evaluation(rng, corpus, lang),
        "review_label": rng.choice(list(ReviewLabel)).value,
        "licence": rng.choice(list(Licence)).value,
    }
    for name, (chance, low, high) in OPTIONAL_TEXTS.items():
        if rng.random() < chance:
            values[name] = _prose(rng, corpus, lang, low, high)
    if lang == "en":
        values["original_title"] = rng.choice(corpus.titles[local])
    if rng.random() < 0.4:
        other = "en" if lang != "en" else local
        values["translations"] = [
            {
                "language": other,
                "title": rng.choice(corpus.titles[other]),
                "summary": _prose(rng, corpus, other, 1, 2),
            }
        ]
    if rng.random() < 0.3:
        values["links"] = [
            {"title": "Programme page", "url": f"https://www.example.{origin.lower()}/practice-{i}"}
            for i in range(rng.randint(1, 2))
        ]
    return SharedPractice.model_validate(values).model_dump(mode="json", exclude_none=True)


def _evaluation(rng: random.Random, corpus: Corpus, lang: str) -> dict[str, Any]:
    kind = rng.choice(list(EvaluationType)).value
    outcomes = []
    if kind != "none":
        outcomes = [
            {
                "outcome": rng.choice(
                    ["reoffending", "disengagement", "employment", "family ties", "housing"]
                ),
                "rating": rng.choice(list(OutcomeRating)).value,
                "source": _prose(rng, corpus, lang, 1, 1),
            }
            for _ in range(rng.randint(0, 2))
        ]
    return {"type": kind, "outcomes": outcomes}


def edited(rng: random.Random, corpus: Corpus, body: dict[str, Any]) -> dict[str, Any]:
    """A new version of a record: an editor reworded the summary and added a lesson."""
    lang = body["language"]
    changed = body | {
        "summary": _prose(rng, corpus, lang, 1, 2),
        "lessons_learned": _prose(rng, corpus, lang, 1, 2),
    }
    return SharedPractice.model_validate(changed).model_dump(mode="json", exclude_none=True)


# --- nodes ---------------------------------------------------------------------------------


@dataclass
class Node:
    origin: str
    directory: Path
    key: keys.SigningKey
    port: int
    entries: int = 0
    # (record id, version, body) of a few records, to edit later
    kept: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.directory / 'node.db'}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        # keys_dir spelled out: the node process runs without the caller's INTEGRA_* settings
        return Settings(
            database_url=self.url, data_dir=self.directory, country=self.origin, keys_dir=None
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_node(tmp: Path, name: str, origin: str) -> Node:
    """A migrated node database with a signing key, as `integra keys init` leaves it."""
    directory = tmp / name
    node = Node(origin, directory, keys.generate(), free_port())
    migrations.upgrade(node.url)
    keys.save(node.key, feed.key_path(node.settings, node.key.key_id))
    engine = create_sync_engine(node.url)
    with Session(engine) as session:
        session.add(NodeKey(key_id=node.key.key_id, public_key=node.key.public_b64))
        session.commit()
    engine.dispose()
    return node


def append_records(
    node: Node, changes: Iterator[tuple[str, int, dict[str, Any]]], batch: int
) -> int:
    """Append (record id, version, body) upserts through `feed.append`, `batch` per transaction."""
    engine = create_sync_engine(node.url)
    appended = 0
    while chunk := list(itertools.islice(changes, batch)):
        with Session(engine) as session:
            for rid, version, body in chunk:
                entry = feed.append(
                    session,
                    node.key,
                    origin=node.origin,
                    record_type="practice",
                    rid=rid,
                    version=version,
                    op="upsert",
                    body=body,
                )
                appended += entry is not None
            session.commit()
    engine.dispose()
    node.entries += appended
    return appended


def new_records(
    rng: random.Random, corpus: Corpus, node: Node, count: int, keep: int
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for i in range(count):
        rid = feed.record_id(node.origin, uuid.UUID(int=rng.getrandbits(128), version=4))
        body = practice_body(rng, corpus, node.origin)
        if i < keep:
            node.kept.append((rid, 1, body))
        yield rid, 1, body


@contextlib.contextmanager
def serving(nodes: list[Node], log_dir: Path) -> Iterator[None]:
    """Real node processes, one per database, the caller's INTEGRA_* settings stripped."""
    processes = []
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_")}
    clean.pop("DATABASE_URL", None)
    try:
        for node in nodes:
            env = clean | {
                "DATABASE_URL": node.url,
                "INTEGRA_DATA_DIR": str(node.directory),
                "INTEGRA_COUNTRY": node.origin,
            }
            log = (log_dir / f"{node.directory.name}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "node", "serve", "--port", str(node.port)],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        for node, process in zip(nodes, processes, strict=True):
            wait_ready(node, process, log_dir)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(node: Node, process: subprocess.Popen[bytes], log_dir: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{node.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    tail = (log_dir / f"{node.directory.name}.log").read_text(errors="replace")[-2000:]
    raise SystemExit(f"node {node.directory.name} did not become ready:\n{tail}")


# --- hubs ----------------------------------------------------------------------------------


@dataclass
class Hub:
    directory: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.directory / 'hub.db'}"

    @property
    def settings(self) -> Settings:
        # A hub as `integra demo` runs one: it relays what it accepts under its own key.
        return Settings(
            database_url=self.url,
            data_dir=self.directory,
            search_backend="sql",
            role="hub",
            country="EU",
            keys_dir=None,
        )


def new_hub(tmp: Path, name: str, nodes: list[Node]) -> Hub:
    """A fresh hub database with its signing key and the nodes enrolled (the rows
    `integra keys init` and `integra hub enrol` write)."""
    hub = Hub(tmp / name)
    migrations.upgrade(hub.url)
    key = keys.generate()
    keys.save(key, feed.key_path(hub.settings, key.key_id))
    engine = create_sync_engine(hub.url)
    with Session(engine) as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        for node in nodes:
            peer = Peer(origin=node.origin, base_url=node.base_url)
            session.add(peer)
            session.flush()
            session.add(
                PeerKey(key_id=node.key.key_id, peer_id=peer.id, public_key=node.key.public_b64)
            )
        session.commit()
    engine.dispose()
    return hub


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the hub's helper
    processes, once the round is over; the node processes still run, so they are not in it)."""
    own, ended = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def sync_round(
    hub: Hub, cpu: list[float] | None = None
) -> tuple[dict[str, Round | str], float, float]:
    """One round as `integra hub sync` runs it (every peer stays due: interval 0; peers side by
    side in `Settings.sync_workers` processes): the import (`run_round` without its index
    catch-up), then the catch-up, timed apart. `cpu` gets the import's CPU seconds."""
    engine = create_sync_engine(hub.url)
    search = make_backend(hub.settings)
    sessions = lambda: Session(engine)  # noqa: E731
    try:
        started, used = time.perf_counter(), cpu_seconds()
        results = run_round(
            sessions, interval=timedelta(0), search=search, settings=hub.settings, index=False
        )
        imported = time.perf_counter() - started
        if cpu is not None:
            cpu.append(cpu_seconds() - used)
        started = time.perf_counter()
        catch_up_index(sessions, search)
        indexed = time.perf_counter() - started
    finally:
        engine.dispose()
    return results, imported, indexed


def tally(results: dict[str, Round | str]) -> Round:
    total = Round()
    for origin, result in sorted(results.items()):
        if not isinstance(result, Round):
            raise SystemExit(f"the hub's round with {origin} failed: {result}")
        total.applied += result.applied
        total.unchanged += result.unchanged
        total.refused += result.refused
    return total


def refusal_reasons(hub: Hub, limit: int = 5) -> list[str]:
    engine = create_sync_engine(hub.url)
    with Session(engine) as session:
        reasons = list(session.scalars(select(SyncRefusal.reason).limit(limit)))
        count = session.scalar(select(func.count()).select_from(SyncRefusal)) or 0
    engine.dispose()
    return [f"{count} refusal(s), e.g.:", *reasons] if count else []


# --- the bare baseline ---------------------------------------------------------------------


@dataclass
class Bare:
    entries: int = 0
    canonical_and_verify: float = 0.0
    verify: float = 0.0
    ed25519: float = 0.0
    fetch: float = 0.0


def bare_verification(nodes: list[Node], page: int = 500) -> Bare:
    """Check every entry's signature as the hub must (canonicalise the payload, then verify),
    timed apart from fetching; then the same without canonicalising, then Ed25519 alone."""
    bare = Bare()
    with httpx.Client(timeout=60) as client:
        for node in nodes:
            public = node.key.public_b64
            raw_key = Ed25519PublicKey.from_public_bytes(keys.unb64(public))
            after = 0
            while True:
                started = time.perf_counter()
                response = client.get(
                    f"{node.base_url}/federation/v1/feed", params={"after": after, "limit": page}
                )
                entries = json.loads(response.content)["entries"]
                bare.fetch += time.perf_counter() - started
                if not entries:
                    break
                after = entries[-1]["payload"]["seq"]
                bare.entries += len(entries)
                _time_page(bare, entries, public, raw_key)
    return bare


def _time_page(bare: Bare, entries: list[Any], public: str, raw_key: Ed25519PublicKey) -> None:
    started = time.perf_counter()
    ok = [keys.verify(public, canonical(e["payload"]), e["sig"]) for e in entries]
    # Feed v2: the payload signs the body's hash, the body travels beside it; checking an
    # entry is also hashing its canonical body (v1: the body is inside the payload).
    ok += [
        hashlib.sha256(canonical(e["body"])).hexdigest() == e["payload"]["body_hash"]
        for e in entries
        if "body" in e and e["body"] is not None
    ]
    bare.canonical_and_verify += time.perf_counter() - started
    signed = [(canonical(e["payload"]), e["sig"]) for e in entries]
    started = time.perf_counter()
    ok += [keys.verify(public, payload, sig) for payload, sig in signed]
    bare.verify += time.perf_counter() - started
    decoded = [(payload, keys.unb64(sig)) for payload, sig in signed]
    started = time.perf_counter()
    for payload, sig in decoded:
        raw_key.verify(sig, payload)  # raises if it does not match
    bare.ed25519 += time.perf_counter() - started
    if not all(ok):
        raise SystemExit("a signature fetched from a node did not verify")


# --- profile -------------------------------------------------------------------------------

# Where the time goes, by the function that does it. Times are cumulative and nest, so the
# shares add up to more than 100%; a row whose function does not exist (yet) is left out.
SPOTS = [
    ("the whole round", "rounds.py", "run_round"),
    ("fetch pages: HTTP + strict JSON", "client.py", "pages"),
    ("  strict JSON parse", "canonical.py", "parse_strict"),
    ("checkpoint: HTTP + verify", "client.py", "fetch_checkpoint"),
    ("leaf hashes", "merkle.py", "leaf_hash"),
    ("Merkle root over every leaf", "merkle.py", "root"),
    ("Merkle frontier", "merkle.py", "extend"),
    ("entry checks", "checks.py", "entry_problem"),
    ("  signature: canonical + verify", "checks.py", "_signature_problem"),
    ("  keys.verify", "keys.py", "verify"),
    ("  schema + gate", "checks.py", "body_problem"),
    ("    pydantic validation", "main.py", "model_validate"),
    ("    gate scan", "__init__.py", "scan"),
    ("      phone numbers", "numbers.py", "phone_hits"),
    ("      identity numbers", "numbers.py", "id_hits"),
    ("      e-mail addresses", "email.py", "email_hits"),
    ("      IBANs", "numbers.py", "iban_hits"),
    ("apply: store the record", "store.py", "apply"),
    ("relay in the hub's feed", "feed.py", "relay_many"),
    ("search index catch-up (after)", "pool.py", "catch_up_index"),
    ("  SqlSearch.upsert", "sql.py", "upsert"),
    ("canonicalisation, every call", "canonical.py", "canonical"),
    ("  rfc8785.dumps", "_impl.py", "dumps"),
    ("  value check walk", "canonical.py", "_check"),
    ("SQL: session flush", "session.py", "flush"),
    ("SQL: session commit", "session.py", "commit"),
]


def profile_import(hub: Hub, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    results, _, _ = sync_round(hub)
    profiler.disable()
    tally(results)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue() + "\n" + hot_spots(stats)


def hot_spots(stats: pstats.Stats) -> str:
    table: dict[tuple[str, str], float] = {}
    for (path, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        table[(Path(path).name, name)] = table.get((Path(path).name, name), 0.0) + row[3]
    whole = table.get(("rounds.py", "run_round"), 1.0)
    lines = ["hot spots (cumulative time, share of the round; profiled, so slower than timed)"]
    for label, file, name in SPOTS:
        seconds = table.get((file, name))
        if seconds is not None:
            lines.append(f"  {label:42} {seconds:8.1f} s  {100 * seconds / whole:5.1f}%")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Figures:
    generation: float = 0.0
    per_node: list[float] = field(default_factory=list)
    held_bodies: int = 0
    checked_bodies: int = 0
    imported: float = 0.0
    import_cpu: float = 0.0
    indexed: float = 0.0
    total: Round = field(default_factory=Round)
    refusals: list[str] = field(default_factory=list)
    bare: Bare = field(default_factory=Bare)
    initial: float = 0.0
    checkpoint: float = 0.0
    incremental: float = 0.0
    changes: Round = field(default_factory=Round)
    rss_import: float = 0.0
    rss_initial: float = 0.0
    profile: str | None = None


def enrolled_hubs(tmp: Path, nodes: list[Node], big: Node, profile: bool) -> list[Hub]:
    """Hubs enrol the nodes before these publish, so that entries fall inside the keys'
    validity window however enrolment dates a key (it once trusted a key only from then on)."""
    hubs = [new_hub(tmp, "hub", nodes), new_hub(tmp, "hub-big", [big])]
    return [*hubs, new_hub(tmp, "hub-profile", nodes)] if profile else hubs


def generate(args: argparse.Namespace, corpus: Corpus, nodes: list[Node], figures: Figures) -> None:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    for node, count in zip(nodes, [args.records] * 4 + [args.incremental_size], strict=True):
        began = time.perf_counter()
        keep = max(20, args.changes)
        append_records(node, new_records(rng, corpus, node, count, keep), args.append_batch)
        figures.per_node.append(time.perf_counter() - began)
        say(f"generated {node.directory.name}: {node.entries:,} entries")
    figures.generation = time.perf_counter() - started


def gate_check(corpus: Corpus, count: int, seed: int) -> int:
    """How many of `count` generated bodies the hub's gate would refuse (should be none)."""
    rng = random.Random(seed + 1)
    return sum(
        bool(HUB_GATE.scan(practice_body(rng, corpus, rng.choice(ORIGINS)))) for _ in range(count)
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def measure(tmp: Path, args: argparse.Namespace, corpus: Corpus, figures: Figures) -> None:
    nodes = [new_node(tmp, f"node-{o.lower()}", o) for o in ORIGINS]
    big = new_node(tmp, "node-big", "PT")
    hubs = enrolled_hubs(tmp, nodes, big, args.profile)
    generate(args, corpus, [*nodes, big], figures)
    with serving([*nodes, big], tmp):
        say("hub import of the four feeds...")
        cpu: list[float] = []
        results, figures.imported, figures.indexed = sync_round(hubs[0], cpu)
        figures.import_cpu = cpu[0]
        figures.total = tally(results)
        figures.rss_import = peak_rss_mb()
        figures.refusals = refusal_reasons(hubs[0])
        say("bare signature checks...")
        figures.bare = bare_verification(nodes)
        say("initial sync of the large feed...")
        results, figures.initial, initial_index = sync_round(hubs[1])
        figures.initial += initial_index
        tally(results)
        figures.rss_initial = peak_rss_mb()
        rng = random.Random(args.seed + 2)
        edits = [(rid, v + 1, edited(rng, corpus, body)) for rid, v, body in big.kept]
        append_records(big, iter(edits[: args.changes]), args.append_batch)
        started = time.perf_counter()
        httpx.get(f"{big.base_url}/federation/v1/checkpoint", timeout=60).raise_for_status()
        figures.checkpoint = time.perf_counter() - started
        results, incremental, incremental_index = sync_round(hubs[1])
        figures.incremental = incremental + incremental_index
        figures.changes = tally(results)
        if args.profile:
            say("profiled hub import...")
            figures.profile = profile_import(hubs[2])


def report(args: argparse.Namespace, figures: Figures) -> None:
    total, bare = figures.total, figures.bare
    verified = total.applied + total.unchanged
    hub_rate = verified / figures.imported
    both_rate = verified / (figures.imported + figures.indexed)
    bare_rate = bare.entries / bare.canonical_and_verify
    workers = Hub(Path(".")).settings.sync_workers
    cpu_ratio = verified / figures.import_cpu / bare_rate
    per_node = ", ".join(f"{o} {t:.0f} s" for o, t in zip(ORIGINS, figures.per_node, strict=False))
    rows = [
        ("feeds", f"4 nodes x {args.records:,} entries; large feed {args.incremental_size:,}"),
        (
            "generation",
            f"{figures.generation:.0f} s, not counted ({per_node}, large "
            f"{figures.per_node[-1]:.0f} s; {args.append_batch} appends per transaction)",
        ),
        ("bodies held by the gate", f"{figures.held_bodies} of {figures.checked_bodies} checked"),
        (
            "hub import",
            f"{hub_rate:,.0f} verified records/s ({verified:,} in {figures.imported:.1f} s; "
            f"{total.refused} refused; relayed in the hub's feed; up to {workers} processes "
            f"on {os.cpu_count()} cores)",
        ),
        (
            "hub import CPU",
            f"{1000 * figures.import_cpu / verified:.3f} ms a record, all its processes "
            f"(bare: {1000 / bare_rate:.3f} ms; CPU ratio {cpu_ratio:.3f})",
        ),
        (
            "search index catch-up",
            f"{verified / figures.indexed:,.0f} records/s ({figures.indexed:.1f} s, after the "
            f"import; import and index together {both_rate:,.0f} records/s)",
        ),
        (
            "bare canonical + verify",
            f"{bare_rate:,.0f} records/s ({bare.entries:,} in {bare.canonical_and_verify:.1f} s)",
        ),
        ("ratio hub / bare", f"{hub_rate / bare_rate:.3f}   goal >= 0.5"),
        ("ratio with the index", f"{both_rate / bare_rate:.3f}   (import and index catch-up)"),
        ("bare verify only", f"{bare.entries / bare.verify:,.0f} records/s (no canonicalising)"),
        ("Ed25519 alone", f"{bare.entries / bare.ed25519:,.0f} records/s (key object reused)"),
        ("fetch, HTTP + JSON", f"{bare.entries / bare.fetch:,.0f} records/s (pages of 500)"),
        (
            "initial sync, large feed",
            f"{args.incremental_size / figures.initial:,.0f} records/s "
            f"({args.incremental_size:,} in {figures.initial:.1f} s, one node)",
        ),
        ("checkpoint, large feed", f"{figures.checkpoint * 1000:.0f} ms (one GET)"),
        (
            "incremental sync",
            f"{figures.incremental:.3f} s for {figures.changes.applied} changes on "
            f"{args.incremental_size:,} entries   goal <= 1 s",
        ),
        (
            "bench peak memory",
            f"{figures.rss_import:,.0f} MB after the import, "
            f"{figures.rss_initial:,.0f} MB after the large feed (maxrss)",
        ),
    ]
    for label, value in rows:
        print(f"{label:26}{value}")
    for line in figures.refusals:
        print(f"  {line}")
    if figures.profile:
        print("\n" + figures.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=25_000, help="feed entries per node")
    parser.add_argument(
        "--incremental-size", type=int, default=100_000, help="entries of the large feed"
    )
    parser.add_argument("--changes", type=int, default=10, help="edits synced incrementally")
    parser.add_argument(
        "--append-batch", type=int, default=1000, help="feed appends per transaction"
    )
    parser.add_argument("--profile", action="store_true", help="profile one more hub import")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="copy the databases and node logs here")
    args = parser.parse_args()
    if args.quick:
        args.records, args.incremental_size = 300, 1_000
    corpus = Corpus.load()
    figures = Figures(checked_bodies=100 if args.quick else 500)
    figures.held_bodies = gate_check(corpus, figures.checked_bodies, args.seed)
    # A terminated run (a `timeout`, say) still stops its node processes and removes its files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        measure(tmp, args, corpus, figures)
    finally:
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, figures)


if __name__ == "__main__":
    main()
