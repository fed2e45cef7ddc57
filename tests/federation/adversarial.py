"""Texts that make a careless pattern backtrack, or a detector do the most work per character:
the gate's worst cases, shared by its tests (tests/federation/test_gate_corpus.py) and its
benchmark (bench/gate.py). Each family makes a text of any length n."""

import random
from collections.abc import Callable


def shuffled(alphabet: str, longest: int, seed: int) -> Callable[[int], str]:
    """Pseudo-random spaced groups of `alphabet`: nothing repeats, nothing judged is reused."""

    def make(n: int) -> str:
        rng = random.Random(seed + n)
        chars = rng.choices(alphabet, k=n)
        at = 0
        for step in rng.choices(range(2, longest + 2), k=n):
            at += step
            if at >= n:
                break
            chars[at] = " "
        return "".join(chars)

    return make


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "a long word before an @": lambda n: "a" * (n - 1) + "@",
    "words and @ alternating": lambda n: ("ab.cd@" * n)[:n],
    "spaced letters before @": lambda n: ("a " * n)[: n - 1] + "@",
    "[at] with no domain": lambda n: ("x [at] " * n)[:n],
    "bare at words": lambda n: ("a at b " * n)[:n],
    "e-mail addresses": lambda n: ("jean@example.org " * n)[:n],
    "dots": lambda n: "." * n,
    "digits and spaces": lambda n: ("12 " * n)[:n],
    "digits and dots": lambda n: ("1." * n)[:n],
    "digits, spaces and dashes": lambda n: ("1-2 3-45 6 " * n)[:n],
    "plus signs and digits": lambda n: ("+30 69 " * n)[:n],
    "fullwidth digits": lambda n: ("１２ ３ " * n)[:n],
    "random spaced digits": shuffled("0123456789", 4, 1),
    "random letters and digits": shuffled("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 6, 2),
    "random digits, dots, dashes": shuffled("0123456789.-/", 5, 4),
    "phone numbers": lambda n: ("210 555 0142, " * n)[:n],
    "one long number": lambda n: "4" * n,
    "letters and digits": lambda n: ("AB12 " * n)[:n],
    "colons and hex": lambda n: ("a:" * n)[:n],
    "street words": lambda n: ("rua a " * n)[:n],
    "born and digits": lambda n: ("born 1 " * n)[:n],
    "dates of birth": lambda n: ("born 12.03.1980 " * n)[:n],
    "case words": lambda n: ("case no " * n)[:n],
    "links": lambda n: ("https://x.eu/12/345 " * n)[:n],
    "mixed scripts": lambda n: ("aа" * n)[:n],
    "invisible characters": lambda n: ("a\u200b" * n)[:n],
    "zero-width spaces only": lambda n: "\u200b" * n,
    "Greek words": lambda n: ("Παπαδόπουλου " * n)[:n],
    "look-alike names": lambda n: ("Pаpadopoulou " * n)[:n],
    "titles": lambda n: ("Dr Li " * n)[:n],
    "repeated titles": lambda n: ("Dr " * n)[:n],
}
