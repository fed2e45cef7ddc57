"""The five catalogues: every interface string and every vocabulary label is translated."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from node.web import i18n
from node.web.labels import FACET_VOCABULARY, LABELS

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "node" / "web" / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted(tmp_path: Path) -> set[str]:
    """The msgids the code and templates use today (what `pybabel extract` finds)."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "node/web/babel.cfg",
         "-k", "N_", "--no-location", "--omit-header", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def test_every_vocabulary_code_has_a_label() -> None:
    for vocabulary, labels in LABELS.items():
        assert set(labels) == {str(v) for v in vocabulary}, vocabulary.__name__
    assert set(FACET_VOCABULARY.values()) <= set(LABELS)


@pytest.mark.parametrize("language", list(i18n.LANGUAGES))
def test_every_string_is_translated(language: str, tmp_path: Path) -> None:
    catalog = i18n.read_catalogue(language)
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog}
    needed = extracted(tmp_path)
    assert needed - set(messages) == set(), "run pybabel update (see node/web/babel.cfg)"
    for msgid in needed:
        message = messages[msgid]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: {msgid!r} is not translated"
        assert not message.fuzzy, f"{language}: {msgid!r} is fuzzy"
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(msgid)), msgid


def test_the_catalogues_load_without_a_build_step() -> None:
    assert i18n.gettext_for("el")("Search practices") == "Αναζήτηση πρακτικών"
    assert i18n.gettext_for("fr")("Search practices") == "Rechercher des pratiques"
