"""Personal-data gate benchmark: recall on the bypass corpus, false holds on legitimate
paragraphs, the scan cost of an ordinary record, and the worst-case scan time per MB.

    .venv/bin/python bench/gate.py                # everything
    .venv/bin/python bench/gate.py --misses       # also list every miss and false hold
    .venv/bin/python bench/gate.py --size 200000  # adversarial bodies of this many characters

Recall: a bypass case counts as caught when some hit overlaps the text it plants. False holds:
legitimate paragraphs (the corpus's own, the seed report's, and every sample practice and study
visit) with any hit, scanned by the node's gate (which knows the corpus's people) and the hub's.
Cost: a sample practice scanned by the hub's gate (no names) and by a node's (with names), per
record, in CPU time (the machine may be shared). Worst case: each adversarial text (one per
detector's weak spot, some pseudo-random so that nothing judged once can be reused) as a body
of `--size` characters (1 MB: ten fields of MAX_TEXT, the longest the gate reads) and of a
tenth of it, scanned with no time budget; the time per MB of the larger, and the ratio of the
two (10 means linear).
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from federation.gate import MAX_TEXT, Gate, Hit, name_of_address  # noqa: E402
from federation.gate.findings import BUDGET  # noqa: E402

CORPUS = ROOT / "tests/federation/gate_corpus"
SAMPLES = ROOT / "practices/sample_data"


from tests.federation.adversarial import ADVERSARIAL  # noqa: E402


def overlaps(hits: list[Hit], field: str, text: str, found: str) -> bool:
    start = text.index(found)
    end = start + len(found)
    return any(h.field == field and h.start < end and h.end > start for h in hits)


def corpus() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    bypass = json.loads((CORPUS / "bypass.json").read_text())
    legitimate = json.loads((CORPUS / "legitimate.json").read_text())["paragraphs"]
    return bypass, legitimate


def node_gate(bypass: dict[str, Any]) -> Gate:
    spelt = [name_of_address(a) for a in bypass["addresses"]]
    return Gate.for_people([*bypass["people"], *(n for n in spelt if n)], home_region="GR")


def sample_records() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, key in (("practices.json", "practices"), ("study_visits.json", "study_visits")):
        for record in json.loads((SAMPLES / name).read_text())[key]:
            shared = {k: v for k, v in record.items() if k != "participant_names"}
            out.append((record["ref"], shared))
    return out


def recall(gate: Gate, cases: list[dict[str, Any]], show: bool) -> None:
    caught = 0
    by_class: dict[str, list[int]] = {}
    for case in cases:
        hit = overlaps(gate.scan({"text": case["text"]}), "text", case["text"], case["found"])
        caught += hit
        by_class.setdefault(case["class"], [0, 0])[0] += hit
        by_class[case["class"]][1] += 1
        if show and not hit:
            print(f"  MISS {case['id']}: {case['text']!r}")
    print(f"recall on the bypass corpus: {caught}/{len(cases)} = {100 * caught / len(cases):.1f} %")
    missed = {c: f"{k}/{n}" for c, (k, n) in by_class.items() if k < n}
    print(f"  classes with a miss: {missed or 'none'}")


def false_holds(gates: dict[str, Gate], paragraphs: list[dict[str, Any]], show: bool) -> None:
    texts = [(p["id"], {"text": p["text"]}) for p in paragraphs] + sample_records()
    for label, gate in gates.items():
        held = []
        for ref, body in texts:
            hits = gate.scan(body)
            if hits:
                held.append(ref)
                if show:
                    found = [(h.detector, _at(body, h)) for h in hits]
                    print(f"  FALSE HOLD ({label}) {ref}: {found}")
        rate = 100 * len(held) / len(texts)
        print(f"false holds, {label}: {len(held)}/{len(texts)} legitimate texts = {rate:.2f} %")


def _at(body: dict[str, Any], hit: Hit) -> str:
    value: Any = body
    for part in hit.field.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return str(value)[hit.start : hit.end]


def record_cost(gates: dict[str, Gate]) -> None:
    records = [body for _, body in sample_records()]
    for label, gate in gates.items():
        for body in records:  # warm the caches as a long-running process has them
            gate.scan(body)
        rounds = 20
        start = time.process_time()
        for _ in range(rounds):
            for body in records:
                gate.scan(body)
        each = (time.process_time() - start) / (rounds * len(records))
        size = sum(len(json.dumps(b, ensure_ascii=False)) for b in records) / len(records)
        print(f"scan cost per sample record, {label}: {1000 * each:.2f} ms (mean {size:.0f} chars)")


def worst_case(gate: Gate, size: int) -> None:
    """Each adversarial text as a body of `size` characters (fields of at most MAX_TEXT, the
    longest one the gate reads) and as a tenth of it, scanned with no time budget."""
    unbounded = Gate(gate.names, gate.home_region, budget_seconds=float("inf"))
    worst = ("", 0.0)
    print(f"adversarial bodies of {size:,} characters (fields of {MAX_TEXT:,}), no time budget:")
    for label, make in ADVERSARIAL.items():
        big, small = _body(make, size), _body(make, size // 10)
        t_small, _ = _timed(unbounded, small)
        t_big, held = _timed(unbounded, big)
        per_mb = t_big * 1_000_000 / size
        ratio = t_big / max(t_small, 1e-9)
        why = "  (held: its checks ran out)" if BUDGET in held else ""
        print(f"  {label:28} {per_mb:8.2f} s/MB   x{ratio:5.1f} for 10x the text{why}")
        worst = max(worst, (label, per_mb), key=lambda w: w[1])
    print(f"worst-case scan time: {worst[1]:.2f} s per MB ({worst[0]})")
    start = time.perf_counter()
    hits = gate.scan({"text": "a" * (MAX_TEXT + 1)})
    print(
        f"a text over {MAX_TEXT:,} characters: {hits[0].detector!r} "
        f"in {1000 * (time.perf_counter() - start):.2f} ms"
    )


def _body(make: Callable[[int], str], size: int) -> dict[str, str]:
    fields = max(1, -(-size // MAX_TEXT))
    return {f"f{n}": make(size // fields) for n in range(fields)}


def _timed(gate: Gate, body: dict[str, str]) -> tuple[float, set[str]]:
    start = time.process_time()  # the machine may be shared: this process's time only
    hits = gate.scan(body)
    return time.process_time() - start, {h.detector for h in hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list misses and false holds")
    parser.add_argument("--size", type=int, default=1_000_000, help="adversarial body size")
    args = parser.parse_args()
    bypass, legitimate = corpus()
    node = node_gate(bypass)
    hub = Gate()
    gates = {"node (with names)": node, "hub (no names)": hub}
    recall(node, bypass["cases"], args.misses)
    hub_cases = [c for c in bypass["cases"] if not c["name"]]
    print("hub (no names), cases other than names:", end=" ")
    recall(hub, hub_cases, args.misses)
    false_holds(gates, legitimate, args.misses)
    record_cost(gates)
    worst_case(node, args.size)


if __name__ == "__main__":
    main()
