"""What the gate reports: a hit (which detector, in which field, where), and the rule that keeps
one hit per stretch of text when two detectors find the same one."""

import time
from dataclasses import dataclass, field

# The detectors, as a hit names them (also the reason a held or refused record is given).
EMAIL_ADDRESS = "an e-mail address"
IBAN_NUMBER = "a bank account number (IBAN)"
PHONE = "a phone number"
NAME = "a name of a person this node knows"
NATIONAL_ID = "a national identity number"
DATE_OF_BIRTH = "a date of birth"
STREET_ADDRESS = "a street address"
PLATE = "a vehicle number plate"
CASE_NUMBER = "a case or file number"
IP_ADDRESS = "an IP address"
HANDLE = "a messaging handle"
# Not a detector's finding: the reasons a text could not be scanned (it is held all the same).
TOO_LONG = "a text too long to scan"
BUDGET = "a record whose scan ran out of time or checks (budget exhausted)"


@dataclass(frozen=True)
class Hit:
    detector: str
    field: str
    start: int
    end: int

    @property
    def reason(self) -> str:
        return f"{self.detector} in {self.field} at characters {self.start}-{self.end}"


SEPARATOR = "\x00"  # between the texts of a body scanned as one: no detector matches across it

# Findings of one detector a scan reports: a text holding more is held for the first ones (the
# rest would cost time and tell a reviewer nothing more).
MAX_HITS = 100

# A detector's finding in one text: (what, start, end).
Found = tuple[str, int, int]

# Which reason a stretch found by two detectors is given: the more specific one (a phone
# number's digits often pass some identity number's check digits too, not the other way round).
SPECIFIC = {
    detector: rank
    for rank, detector in enumerate(
        [
            TOO_LONG,
            BUDGET,
            EMAIL_ADDRESS,
            HANDLE,
            IP_ADDRESS,
            IBAN_NUMBER,
            DATE_OF_BIRTH,
            CASE_NUMBER,
            PHONE,
            NAME,
            STREET_ADDRESS,
            PLATE,
            NATIONAL_ID,
        ]
    )
}


def without_overlaps(hits: list[Hit]) -> list[Hit]:
    """One hit per stretch of text: a number inside an IBAN is the IBAN, not also a phone."""
    ordered = sorted(
        set(hits),
        key=lambda h: (h.field, h.start, -(h.end - h.start), SPECIFIC.get(h.detector, 9)),
    )
    kept: list[Hit] = []
    for hit in ordered:
        if kept and kept[-1].field == hit.field and hit.end <= kept[-1].end:
            continue
        kept.append(hit)
    return kept


class OutOfTime(Exception):
    """A scan's time budget (or its budget of validations) is spent."""


# Validator calls a scan may make after the cheap checks (python-stdnum's check digits, one
# call per identifier of a candidate's length; libphonenumber's plans, one per region tried):
# a report's record needs a few hundred; a text written to make every stretch a candidate is
# held instead of checked for ever (each call costs ~10-50 us).
VALIDATIONS = 5_000


@dataclass
class Budget:
    """The time a scan may take, checked by the detectors between pieces of work, and the
    validations it may run."""

    seconds: float
    validations: int = VALIDATIONS
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime

    def validate(self, count: int = 1) -> None:
        """`count` validations more: out of budget when none is left."""
        self.validations -= count
        if self.validations < 0:
            raise OutOfTime
