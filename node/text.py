"""Text folding shared by search filters and (later) the personal-data detectors."""

import unicodedata


def fold(text: str) -> str:
    """Case- and accent-insensitive form: "Réinsertion" and "REINSERTION" fold alike.

    Works for Latin, Greek ("Κοινωνική" → "κοινωνικη") and Cyrillic; final sigma folds to sigma.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).replace("ς", "σ")


def like_pattern(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its wildcards escaped with a backslash."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
