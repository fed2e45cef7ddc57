"""What the gate reports: a hit (which detector, in which field, where), and the rule that keeps
one hit per stretch of text when two detectors find the same one."""

from dataclasses import dataclass

# The detectors, as a hit names them (also the reason a held or refused record is given).
EMAIL_ADDRESS = "an e-mail address"
IBAN_NUMBER = "a bank account number (IBAN)"
PHONE = "a phone number"
NAME = "a name of a person this node knows"
NATIONAL_ID = "a national identity number"


@dataclass(frozen=True)
class Hit:
    detector: str
    field: str
    start: int
    end: int

    @property
    def reason(self) -> str:
        return f"{self.detector} in {self.field} at characters {self.start}-{self.end}"


# A detector's finding in one text: (what, start, end).
Found = tuple[str, int, int]

# Which reason a stretch found by two detectors is given: the more specific one (a phone
# number's digits often pass some identity number's check digits too, not the other way round).
SPECIFIC = {EMAIL_ADDRESS: 0, IBAN_NUMBER: 1, PHONE: 2, NAME: 3, NATIONAL_ID: 4}


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
