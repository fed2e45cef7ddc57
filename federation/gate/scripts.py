"""Greek and Bulgarian transliteration to Latin as people write names (ELOT 743, the official
Bulgarian system): one of the spellings a known name is compared in."""

from node.core.text import fold

GREEK_LATIN = {
    "α": "a",
    "β": "v",
    "γ": "g",
    "δ": "d",
    "ε": "e",
    "ζ": "z",
    "η": "i",
    "θ": "th",
    "ι": "i",
    "κ": "k",
    "λ": "l",
    "μ": "m",
    "ν": "n",
    "ξ": "x",
    "ο": "o",
    "π": "p",
    "ρ": "r",
    "σ": "s",
    "τ": "t",
    "υ": "y",
    "φ": "f",
    "χ": "ch",
    "ψ": "ps",
    "ω": "o",
}
GREEK_DIGRAPHS = (
    ("ου", "ou"),
    ("αι", "ai"),
    ("ει", "ei"),
    ("οι", "oi"),
    ("μπ", "b"),
    ("ντ", "nt"),
    ("γκ", "gk"),
    ("αυ", "av"),
    ("ευ", "ev"),
)
BULGARIAN_LATIN = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "h",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "sht",
    "ъ": "a",
    "ь": "y",
    "ю": "yu",
    "я": "ya",
}


def transliterate(text: str) -> str:
    """Greek (ELOT 743, simplified) and Bulgarian (official system) to Latin letters."""
    out = fold(text)
    for greek, latin in GREEK_DIGRAPHS:
        out = out.replace(greek, latin)
    return "".join(GREEK_LATIN.get(c, BULGARIAN_LATIN.get(c, c)) for c in out)
