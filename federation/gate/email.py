"""E-mail addresses, also written to escape a harvester: "name [at] domain (dot) eu",
"name(at)domain.eu", "name at domain dot eu", "n a m e @ domain.eu".

Every pattern here reads a bounded stretch around one "at": the cost is linear in the text,
whatever it holds (a long word before an "@" once took quadratic time).
"""

import re

from federation.gate.clues import Clues
from federation.gate.findings import EMAIL_ADDRESS, MAX_HITS, Found

DOT_WORDS = r"(?:dot|punto|ponto|point)"
# The ways an "at" is written: "@", "[at]" / "( arroba )", and the bare word between spaces.
# The words are found by their letters (a search skips to a literal fast), then what stands
# around them is checked; they read the lower-cased text.
AT_SIGN = re.compile("@")
AT_WORDS = (re.compile(r"at(?=\s|\s{0,3}[\])}>])"), re.compile(r"arroba(?=\s|\s{0,3}[\])}>])"))
OPENED = re.compile(r"[\[({<]\s{0,3}\Z")
CLOSED = re.compile(r"\s{0,3}[\])}>]")
# Read backwards from the "at" (the window reversed): a local part, or one spelt letter by letter.
LOCAL = re.compile(r"\s{0,3}([\w.+-]{1,64})")
SPACED_LOCAL = re.compile(r"\s{0,3}([\w.+-](?: [\w.+-]){2,40})(?![\w.+-])")
DOMAIN = re.compile(
    r"\s{0,3}[\w-]{1,63}(?:(?:\s{0,3}(?:\.|[\[({<]\s{0,3}" + DOT_WORDS + r"\s{0,3}[\])}>])\s{0,3}"
    r"|\s" + DOT_WORDS + r"\s)[\w-]{1,63}){1,8}",
    re.IGNORECASE,
)
OBFUSCATED_DOT = re.compile(r"[\[({<]\s{0,3}" + DOT_WORDS + r"|\s" + DOT_WORDS + r"\s", re.I)
REACH = 110  # characters before an "at" a local part may take (64, or 41 spaced letters)


def _ats(clues: Clues) -> list[tuple[int, int, bool]]:
    """Each "at" of a text: where it is written, and whether it is a bare word."""
    text, lower = clues.text, clues.lower
    ats = [(m.start(), m.end(), False) for m in AT_SIGN.finditer(text)] if "@" in text else []
    for pattern in AT_WORDS:
        for m in pattern.finditer(lower):
            start, end = m.span()
            opened = OPENED.search(lower, max(0, start - 4), start)
            closed = CLOSED.match(lower, end)
            if opened is not None and closed is not None:
                ats.append((opened.start(), closed.end(), False))
            elif lower[start - 1 : start].isspace() and lower[end : end + 1].isspace():
                ats.append((start, end, True))
    return ats


def email_hits(clues: Clues) -> list[Found]:
    text = clues.text
    ats = _ats(clues)
    hits: list[Found] = []
    for at_start, at_end, bare in ats:
        if len(hits) >= MAX_HITS:
            break
        backwards = text[max(0, at_start - REACH) : at_start][::-1]
        local = LOCAL.match(backwards)
        if local is not None and len(local.group(1)) == 1:
            local = SPACED_LOCAL.match(backwards) or local
        domain = DOMAIN.match(text, at_end, min(len(text), at_end + 400))
        if local is None or domain is None:
            continue
        if bare and not (  # the bare word "at": with a.name or "dot" only
            OBFUSCATED_DOT.search(domain.group()) or re.search(r"\w[._]\w", local.group(1))
        ):
            continue
        hits.append((EMAIL_ADDRESS, at_start - local.end(), domain.end()))
    return hits
