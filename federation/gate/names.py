"""The names of people this node knows, found in text whatever their case, accents, script,
look-alike letters, invisible characters or inflected ending; a role beside a name ("Jean Dupont,
probation officer") is not part of it, and a name that is only a role ("Duty officer") is none.

Words are compared in the normal form (normal.py: ASCII), in which a name has several spellings:
its own script transliterated, its look-alike skeleton, and the Latin spellings people write
(ELOT 743 for Greek, the official system for Bulgarian). Greek and Bulgarian surnames inflect
(Παπαδόπουλος / Παπαδόπουλου, Петров / Петрова / Петровата): such a name also matches by its
stem, never a name of the Latin languages, so "costs" is not Costa and "petits" is not Petit.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii

from federation.gate.findings import MAX_HITS, NAME, SEPARATOR, Found
from federation.gate.normal import Normal, keywords, look_alike_form, normal
from federation.gate.scripts import transliterate
from node.core.text import fold

WORD = re.compile(r"[A-Za-z]+")
UNICODE_WORD = re.compile(r"[^\W\d_]+")

# Inflected endings (in the normal form) stripped before an inflecting name is compared: Greek
# cases, Bulgarian gender and number and the definite article, as transliterated.
ENDINGS = sorted(
    "os ou oy is as es on ov ova ovi ev eva evi ska ski sko iya ya a e i o y s".split(),
    key=len,
    reverse=True,
)
ARTICLES = sorted("ta te to iyat yat at ut iya ya".split(), key=len, reverse=True)
# A Latin-script name inflects when it ends as Greek and Bulgarian surnames do.
INFLECTING_LATIN = re.compile(r"(?:os|ou|is|as|ov|ova|ev|eva|ski|ska|sky|ou|idis|akis|aki)$")
NON_LATIN = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff\u0400-\u04ff]")
MIN_STEM = 4
MIN_SURNAME = 4  # a shorter surname is a hit only after a title or beside an initial

# Words that make a contact's "name" a function, not a person: stripped from a name, so that
# "Jean Dupont, probation officer" is Jean Dupont and "Duty officer" is nobody.
ROLE_WORDS = frozenset(
    fold(w)
    for w in """
    officer desk duty liaison coordinator director directorate secretariat office unit helpline
    service head manager team point contact reception department centre center line hotline
    permanence accueil bureau sample staff administrator practitioner general national support
    pair educator psychologist psychiatrist social worker counsellor counselor mediator chaplain
    teacher trainer adviser advisor specialist analyst nurse doctor lawyer inspector probation
    prison police guard assistant secretary clerk representative delegate operator enquiries
    appointments referral relations commission council training policy international regional
    deputy interregional info information mail admin webmaster noreply contacto geral
    of the and for de du des da do dos das la le les et e y на и за по του της των και
    chef chefe responsable directeur directrice coordinateur coordinatrice agent conseiller
    conseillère conseiller travailleur educateur éducatrice assistante secrétaire
    diretor diretora coordenador coordenadora técnico técnica assistente secretário
    director psicólogo psicóloga
    директор ръководител координатор служител инспектор психолог отдел сектор
    διευθυντής διευθύντρια συντονιστής συντονίστρια υπεύθυνος υπεύθυνη ψυχολόγος τμήμα
    """.split()
)
# Titles before a surname (each in the normal form: the Bulgarian "Mrs" is "g-zha").
TITLES = re.compile(
    r"(?<![A-Za-z])(?:"
    + keywords(
        "mr mrs ms miss dr prof mme mlle m sr sra srta dra exmo exma eng "
        "κ κα κος κυρία κύριος κ.κ δρ г г-н г-жа г-ца д-р проф"
    )
    + r")\.?\s*$",
    re.IGNORECASE,
)
INITIAL = re.compile(r"(?<![A-Za-z])[A-Za-z]\.(?:-?[A-Za-z]\.)?\s*$")


def _stems(form: str) -> frozenset[str]:
    """The stems of an inflecting word: without an ending, and without an article and then
    an ending (Petrovata, Petrovite)."""
    out: set[str] = set()
    for word in {form, *(form[: -len(a)] for a in ARTICLES if form.endswith(a))}:
        for ending in ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM:
                out.add(word[: -len(ending)])
        if len(word) >= MIN_STEM:
            out.add(word)
    return frozenset(out)


# Latin spellings of Greek diphthongs that transliterations disagree on (anyascii "oy", "ey",
# "ay", "mp"; ELOT "ou", "ev", "av", "b"), and the Bulgarian "u" for the Greek "ou".
VARIANTS = (("oy", "ou"), ("ey", "ev"), ("ay", "av"))


def _variant(form: str) -> str:
    for old, new in VARIANTS:
        form = form.replace(old, new)
    return form


def _ascii(word: str) -> str:
    return re.sub(r"[^a-z]", "", anyascii(word).lower())


@dataclass(frozen=True)
class NameWord:
    forms: frozenset[str]  # spellings in the normal form, lower-case
    stems: frozenset[str]  # an inflecting word's stems; empty for one that does not inflect

    @classmethod
    def of(cls, word: str) -> "NameWord":
        cleaned = normal(word).text
        forms = {
            _ascii(cleaned),
            _ascii(look_alike_form(word)),
            _ascii(transliterate(word)),
        } - {""}
        forms |= {_variant(f) for f in forms}
        if NON_LATIN.search(word):
            forms |= {f.replace("ou", "u") for f in forms}
        inflects = bool(NON_LATIN.search(word)) or any(INFLECTING_LATIN.search(f) for f in forms)
        stems = frozenset().union(*map(_stems, forms)) if inflects else frozenset()
        return cls(frozenset(forms), stems)


@dataclass(frozen=True)
class KnownName:
    """A person this node knows: each word of the name, surname last."""

    words: tuple[NameWord, ...]

    @property
    def surname(self) -> NameWord:
        return self.words[-1]


def name_words(name: str) -> list[str]:
    """The words of a person's name, without what is said in brackets, initials, titles and
    role words ("Head of unit Maria Costa" is Maria Costa)."""
    name = re.sub(r"\([^)]*\)", " ", name)
    words = [w for w in UNICODE_WORD.findall(name) if len(w) > 1]
    roles = [w for w in words if fold(w) in ROLE_WORDS]
    titled = any(TITLES.match(normal(w).text) for w in words)
    kept = [w for w in words if fold(w) not in ROLE_WORDS and not TITLES.match(normal(w).text)]
    # A contact named by its function ("Radicalisation policy desk", "SPIP duty officer",
    # "Liaison office for detention facilities"): beside role words, a person's name is two
    # capitalised words or more, or follows a title ("Mme Petit, directrice").
    if roles and not titled and (len(kept) < 2 or not all(w[0].isupper() for w in kept)):
        return []
    return kept


def known_names(names: Iterable[str]) -> list[KnownName]:
    out: set[KnownName] = set()
    for name in names:
        words = name_words(name)
        if words:
            out.add(KnownName(tuple(NameWord.of(w) for w in words)))
    return sorted(out, key=lambda k: sorted(k.surname.forms))


def name_of_address(address: str) -> str | None:
    """The name an e-mail address's local part spells, if it spells one ("jean.dupont@…" is
    Jean Dupont, "j.dupont@…" is J Dupont): words joined by dots, dashes or underscores."""
    local = address.partition("@")[0]
    parts = [p for p in re.split(r"[._\-+\d]+", local) if p]
    if len(parts) < 2 or not all(p.isalpha() for p in parts):
        return None
    return " ".join(p.capitalize() for p in parts)


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    forms: frozenset[str]
    stems: frozenset[str]


@lru_cache(maxsize=50_000)  # the words of a node's texts repeat: each is formed once
def _token_forms(text_form: str, written: str) -> tuple[frozenset[str], frozenset[str]]:
    forms = {text_form}
    if not written.isascii():
        forms |= {_ascii(look_alike_form(written)), _ascii(transliterate(written))} - {""}
    return frozenset(forms), frozenset().union(*map(_stems, forms))


@dataclass(frozen=True)
class NameIndex:
    """The known names by the spellings and stems of their first word and of their surname, so
    a text's words are looked up instead of compared with every name."""

    names: tuple[KnownName, ...]
    by_first: dict[str, frozenset[int]]
    by_surname: dict[str, frozenset[int]]
    by_surname_stem: dict[str, frozenset[int]]
    keys: frozenset[str]  # every spelling and stem the three look-ups know

    @classmethod
    def of(cls, names: tuple[KnownName, ...]) -> "NameIndex":
        first: dict[str, set[int]] = {}
        surname: dict[str, set[int]] = {}
        stem: dict[str, set[int]] = {}
        for n, name in enumerate(names):
            if len(name.words) > 1:
                for form in name.words[0].forms | name.words[0].stems:
                    first.setdefault(form, set()).add(n)
            for form in name.surname.forms:
                surname.setdefault(form, set()).add(n)
            for form in name.surname.stems:
                stem.setdefault(form, set()).add(n)

        def frozen(index: dict[str, set[int]]) -> dict[str, frozenset[int]]:
            return {f: frozenset(s) for f, s in index.items()}

        keys = frozenset(first) | frozenset(surname) | frozenset(stem)
        return cls(names, frozen(first), frozen(surname), frozen(stem), keys)

    def tokens(self, text: Normal) -> list[Token]:
        out = []
        for m in WORD.finditer(text.text):
            form = m.group().lower()
            written = text.written_at(m.start(), m.end()) if text.segments else form
            forms, stems = _token_forms(form, written)
            out.append(Token(m.start(), m.end(), forms, stems))
        return out

    def _hot(self, form: str) -> bool:
        forms, stems = _token_forms(form, form)
        return not (self.keys.isdisjoint(forms) and self.keys.isdisjoint(stems))

    def hits(self, text: Normal) -> list[Found]:
        """A whole name where its words follow one another, else a surname on its own (a
        short one only after a title or beside an initial). Positions are in the normal form.

        A text written in Latin letters has one spelling per word, its normal form: its words
        are looked up once each, and a text none of whose words any name has is done with.
        Greek and Cyrillic words (or words of look-alike letters) have more spellings, read
        from the words as written."""
        if len(text.segments) > 1 or NON_LATIN.search(text.written):
            tokens = self.tokens(text)
            return self._found(text, tokens.__getitem__, len(tokens), range(len(tokens)))
        forms = WORD.findall(text.text.lower())
        hot = {form for form in set(forms) if self._hot(form)}
        if not hot:
            return []
        spans = [m.span() for m in WORD.finditer(text.text)]

        def token(k: int) -> Token:  # made only for the words that may be a name's
            return Token(*spans[k], *_token_forms(forms[k], forms[k]))

        places = (k for k, form in enumerate(forms) if form in hot)
        return self._found(text, token, len(forms), places)

    def _found(
        self, text: Normal, token_at: Callable[[int], Token], count: int, places: Iterable[int]
    ) -> list[Found]:
        """Names at the tokens of `places` (the others cannot start one or be a surname)."""
        found: list[Found] = []
        keys = self.keys
        for i in places:
            if len(found) >= MAX_HITS:
                break
            token = token_at(i)
            if keys.isdisjoint(token.forms) and keys.isdisjoint(token.stems):
                continue
            whole: set[int] = set()
            for n in _lookup(self.by_first, token.forms | token.stems):
                words = self.names[n].words
                if i + len(words) > count:
                    continue
                window = [token_at(k) for k in range(i, i + len(words))]
                if all(_matches(t, w) for t, w in zip(window, words, strict=True)) and (
                    SEPARATOR not in text.text[token.start : window[-1].end]  # one field
                ):
                    whole.add(n)
                    found.append((NAME, token.start, window[-1].end))
            candidates = _lookup(self.by_surname, token.forms) | _lookup(
                self.by_surname_stem, token.stems
            )
            if any(self._stands_as_surname(text.text, token, n) for n in candidates - whole):
                found.append((NAME, token.start, token.end))
        return found

    def _stands_as_surname(self, text: str, token: Token, n: int) -> bool:
        """A surname alone: a long one anywhere (a Latin one capitalised, so the Portuguese
        "costa" is not Costa), a short one after a title or an initial."""
        before = text[max(0, token.start - 12) : token.start]
        if TITLES.search(before) or INITIAL.search(before):
            return True
        surname = self.names[n].surname
        if min(map(len, surname.forms)) < MIN_SURNAME:
            return False
        return bool(surname.stems) or text[token.start].isupper()


def _matches(token: Token, word: NameWord) -> bool:
    return bool(token.forms & word.forms) or bool(word.stems and token.stems & word.stems)


def _lookup(index: dict[str, frozenset[int]], forms: frozenset[str]) -> set[int]:
    found: set[int] = set()
    for form in forms:
        found |= index.get(form, frozenset())
    return found
