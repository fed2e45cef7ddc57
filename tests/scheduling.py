"""How xdist hands out the suite: whole files, longest first, a file's two databases apart.

`--dist loadfile` gives a worker whole files (a module's node process is started once), in
the order of their number of tests: the many quick unit tests first and the few slow journeys
(a federation of processes, a backup restored, schemathesis) last, so the run ended with one
worker on a 2-minute file while the others idled. This scheduler (`pytest_xdist_make_scheduler`
in tests/conftest.py) keeps the work units but orders them by their expected duration
(`durations.json`, seconds per unit from one whole run's JUnit report; a unit it does not
know counts half a second a test), longest first, and makes a file whose every test runs on
both databases two units, one per database (its module fixtures depend on `database`, so they
are made once per database either way), which two workers can run side by side.

Refresh the durations after a change that moves them much (a unit it does not know counts half a
second a test): `pytest --junitxml=/tmp/run.xml && python -m tests.scheduling /tmp/run.xml`.
"""

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

DURATIONS = Path(__file__).with_name("durations.json")
BACKEND = re.compile(r"\[(?:.*-)?(sqlite|postgresql)(?:-.*)?\]$")
UNKNOWN_SECONDS_PER_TEST = 0.5
# Files whose tests on the two databases share one fixed Redis database (a Celery queue, its
# workers): their halves must not run side by side.
WHOLE = {
    "tests/federation/test_beat.py",
    "tests/node/test_readiness.py",
    "tests/practices/test_worker.py",
}


def split_units(nodeids: Iterable[str]) -> "OrderedDict[str, list[str]]":
    """Each file's tests, as one unit or, when every test of it names a database, as one unit
    per database (`file[sqlite]`, `file[postgresql]`)."""
    by_file: OrderedDict[str, list[str]] = OrderedDict()
    for nodeid in nodeids:
        by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    units: OrderedDict[str, list[str]] = OrderedDict()
    for file, ids in by_file.items():
        backends = [BACKEND.search(i) for i in ids]
        for nodeid, found in zip(ids, backends, strict=True):
            split = found and file not in WHOLE and all(backends)
            unit = f"{file}[{found[1]}]" if split else file
            units.setdefault(unit, []).append(nodeid)
    return units


def expected_seconds(units: "OrderedDict[str, list[str]]") -> dict[str, float]:
    known: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    return {
        unit: known.get(unit, UNKNOWN_SECONDS_PER_TEST * len(ids)) for unit, ids in units.items()
    }


class LongestFirst(LoadScopeScheduling):
    """`--dist loadfile`'s work units (split per database as above), longest first."""

    def _split_scope(self, nodeid: str) -> str:
        return self._unit_of[nodeid]

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self.nodes:
                self._reschedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = list(next(iter(self.registered_collections.values())))
        if not self.collection:
            return
        units = split_units(self.collection)
        self._unit_of = {nodeid: unit for unit, ids in units.items() for nodeid in ids}
        seconds = expected_seconds(units)
        for unit in sorted(units, key=lambda u: -seconds[u]):
            self.workqueue[unit] = dict.fromkeys(units[unit], False)
        for _ in range(len(self.nodes) - len(self.workqueue)):
            unused, _assigned = self.assigned_work.popitem()
            unused.shutdown()
        for node in self.nodes:
            # a worker runs a test once it knows the next one (or that there is none): a unit
            # of one test alone would never start
            while self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
                self._assign_work_unit(node)


def durations_from_junit(path: Path) -> dict[str, float]:
    """Seconds per work unit (setup, call and teardown of its tests) in a JUnit report."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        file = case.get("classname", "").replace(".", "/") + ".py"
        cases.append((f"{file}::{case.get('name')}", float(case.get("time", 0))))
    units = split_units(nodeid for nodeid, _ in cases)
    unit_of = {nodeid: unit for unit, ids in units.items() for nodeid in ids}
    seconds: dict[str, float] = {}
    for nodeid, took in cases:
        seconds[unit_of[nodeid]] = seconds.get(unit_of[nodeid], 0.0) + took
    return {unit: round(s, 1) for unit, s in sorted(seconds.items())}


if __name__ == "__main__":
    measured = durations_from_junit(Path(sys.argv[1]))
    DURATIONS.write_text(json.dumps(measured, indent=1) + "\n")
    print(f"{len(measured)} units, {sum(measured.values()):.0f} s in all: {DURATIONS}")
