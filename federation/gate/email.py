"""E-mail addresses, also written to escape a harvester ("name [at] domain (dot) eu")."""

import re

from federation.gate.findings import EMAIL_ADDRESS, Found

EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|＠|\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|\s+at\s+(?=[\w-]+\s*(?:\[|\()\s*dot))"
    r"\s*[\w-]+(?:\s*(?:\.|\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\})\s*[\w-]+)+",
    re.IGNORECASE,
)

# What every form EMAIL knows contains: the expensive pattern runs only where one of these is.
AT_BRACKETED = re.compile(r"[\[({]\s*[aA][tT]\s*[\])}]")
DOT_WORD = re.compile(r"[\[(]\s*[dD][oO][tT]")
AT_WORD_DOT = re.compile(r"\sat\s.*?[\[(]\s*dot", re.IGNORECASE | re.DOTALL)


def _at_bracket(text: str, brackets: str, pattern: re.Pattern[str]) -> bool:
    """Whether `pattern`, which opens with one of `brackets`, matches somewhere: tried only at
    those brackets, found by `str.find` (the regex engine's own search tries every character,
    ten times slower on a practice's texts)."""
    if sum(map(text.count, brackets)) > 64:  # a text full of brackets: one regex pass is faster
        return pattern.search(text) is not None
    for bracket in brackets:
        at = text.find(bracket)
        while at != -1:
            if pattern.match(text, at):
                return True
            at = text.find(bracket, at + 1)
    return False


def email_hits(text: str) -> list[Found]:
    if (
        "@" not in text
        and "＠" not in text
        and not _at_bracket(text, "[({", AT_BRACKETED)
        and not (_at_bracket(text, "[(", DOT_WORD) and AT_WORD_DOT.search(text))
    ):
        return []
    return [(EMAIL_ADDRESS, m.start(), m.end()) for m in EMAIL.finditer(text)]
