"""Text folding shared by search filters and (later) the personal-data detectors."""

import re
import unicodedata

# Combining marks: accents of Latin and Greek letters, Cyrillic titlo, and the like.
COMBINING = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)


def fold(text: str) -> str:
    """Case- and accent-insensitive form: "Réinsertion" and "REINSERTION" fold alike.

    Works for Latin, Greek ("Κοινωνική" → "κοινωνικη") and Cyrillic; final sigma folds to sigma.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", COMBINING.sub("", decomposed))


def like_pattern(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its wildcards escaped with a backslash."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
