"""What the federation schema's poison checks cost a hub's import, and that they stay linear.

    python bench/ingest_checks.py [--bodies 5000]

Builds shared practice bodies as `bench/sync.py` does and times, per body: the whole schema
validation (`SharedPractice.model_validate`, what `body_problem` runs before the gate), and
the text rules alone (`text_problem` on every string: forbidden characters, markup), then the
rules on 1 MB adversarial texts (a long run of "<a", of "<!", of "<" then spaces, of "\\r").
Nothing here is a pass/fail test: it prints figures.
"""

import argparse
import random
import statistics

# ruff: noqa: E402 - the project imports after the sys.path fix.
import sys
import time
from pathlib import Path

# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync import Corpus, practice_body
from federation.projection import SharedPractice, text_problem, text_values

ADVERSARIAL = {
    '"<a" x 500k': "<a" * 500_000,
    '"<!" x 500k': "<!" * 500_000,
    '"<" then 1M spaces': "<" + " " * 1_000_000,
    '"\\r" x 1M': "\r" * 1_000_000,
    '"x" x 1M (clean)': "x" * 1_000_000,
}


def per_body(bodies: list[dict[str, object]], check: object) -> list[float]:
    times = []
    for body in bodies:
        start = time.perf_counter()
        check(body)  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    corpus = Corpus.load()
    bodies = [practice_body(rng, corpus, "PT") for _ in range(args.bodies)]
    size = statistics.mean(len(str(b)) for b in bodies)
    print(f"{len(bodies)} bodies, {size:.0f} characters on average")
    schema = per_body(bodies, SharedPractice.model_validate)
    rules = per_body(bodies, lambda b: [text_problem(t) for t in text_values(b)])
    for name, times in (("schema validation", schema), ("text rules alone", rules)):
        ordered = sorted(times)
        print(
            f"{name:>18}: median {statistics.median(times):7.1f} us,"
            f" p99 {ordered[int(len(ordered) * 0.99)]:7.1f} us per body"
        )
    for name, text in ADVERSARIAL.items():
        start = time.perf_counter()
        text_problem(text)
        text_problem(text, multi_line=False)
        elapsed = (time.perf_counter() - start) * 1000 / 2
        print(f"{name:>22}: {elapsed:7.1f} ms per MB")


if __name__ == "__main__":
    main()
