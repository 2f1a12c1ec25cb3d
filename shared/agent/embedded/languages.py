"""Languages as data: which language a ticket is written in, and the words that carry it into English.

Each supported language is one file in shared/agent/languages/ (``es.json``, ``de.json``...): words and
phrases that map the language's way of writing a problem onto the English knowledge base's words, its
stop and generic words, the clarification questions and the solution steps in that language. The
knowledge base, its rules and the matcher stay English: a Spanish ticket is normalised into the same
tokens as its English twin, so the same trigger rules escalate the same incidents. ``_unsupported.json``
names languages the agent does not support (so that they are recognised as such, not read as English)
and a small cross-language list of critical words, which apply to every ticket that is not English.

Words and patterns are written naturally (with accents); they are compared without them, so a ticket
typed without accents (``contrasena``, ``Kennwort zurucksetzen``) is read the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.agent.embedded.text import MAX_CHARS, Lexicon, read_json, stem

DEFAULT_LANGUAGES_DIR = Path(__file__).parents[1] / "languages"
ENGLISH = "en"
UNSUPPORTED_FILE = "_unsupported.json"
UNDETERMINED = "und"  # not one of the known languages, nor English

# A prefix key ("impresor*") must be at least this long, so it cannot swallow unrelated short words.
MIN_PREFIX = 4
# A compound part (German "Drucker|warteschlange") must be at least this long.
MIN_PART = 4
# A ticket of at least this many words, under this share of them English words, is not read as English.
MIN_WORDS_TO_JUDGE = 4
MIN_ENGLISH_SHARE = 0.3
# A ticket with more of its letters in other scripts than this is partly unreadable: undetermined.
NON_LATIN_MAX = 0.2
# A language needs at least this much evidence, and more than English has, to be chosen over English.
MIN_EVIDENCE = 0.5
_VOCABULARY_WEIGHT = 0.5
_BORROWED_WEIGHT = 0.25
_LETTER_WEIGHT = 0.75
_LETTER_CAP = 3

_SPECIAL_LETTERS = str.maketrans(
    {"ß": "ss", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "\u0131": "i", "đ": "d", "ð": "d", "þ": "th"}
)
_WORD = re.compile(r"[a-z0-9]+")
# Apostrophes and hyphens separate words ("l'imprimante", "haut-parleur"), however they are typed.
_CONTRACTION = re.compile(r"n['\u2019]t\b")
_SEPARATOR = re.compile(r"[\s'\u2019`\u00b4-]+")


def fold(text: str) -> str:
    """Lowercase, without accents: 'Contraseña' and 'contrasena' are one word, 'Gebäude' is 'gebaude'."""
    text = text.lower().translate(_SPECIAL_LETTERS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    """Folded words, apostrophes splitting them ("l'imprimante" is "l" and "imprimante")."""
    return _WORD.findall(fold(text))


def non_latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if not unicodedata.name(c, "").startswith("LATIN")) / len(letters)


@dataclass(frozen=True)
class Vocabulary:
    """Words (folded) mapped to English words: exact keys, and prefix keys written ``stem*``."""

    exact: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str) -> Vocabulary:
        exact: dict[str, str] = {}
        prefixes: dict[str, str] = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: words map a word to English words")
            folded = fold(key.strip())
            table, word = (prefixes, folded[:-1]) if folded.endswith("*") else (exact, folded)
            if table.get(word, value) != value:
                # "utilise" and "utilisé" are one word once accents go: they must mean one thing
                raise ValueError(f"{where}: {key!r} means two things without its accents")
            if folded.endswith("*"):
                stem = folded[:-1]
                if len(stem) < MIN_PREFIX or not _WORD.fullmatch(stem):
                    raise ValueError(f"{where}: prefix {key!r} needs {MIN_PREFIX}+ letters")
                prefixes[stem] = value
            elif _WORD.fullmatch(folded):
                exact[folded] = value
            else:
                raise ValueError(f"{where}: {key!r} is not one word (use a phrase for several)")
        return cls(exact, prefixes)

    def lookup(self, word: str) -> str | None:
        if word in self.exact:
            return self.exact[word]
        for end in range(len(word), MIN_PREFIX - 1, -1):
            if word[:end] in self.prefixes:
                return self.prefixes[word[:end]]
        return None

    def merged(self, fallback: Vocabulary) -> Vocabulary:
        """This vocabulary, with `fallback`'s words where this one has none."""
        return Vocabulary({**fallback.exact, **self.exact}, {**fallback.prefixes, **self.prefixes})


def _phrases(raw: Iterable[Any], where: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    try:
        return tuple((re.compile(fold(pattern)), fold(replacement)) for pattern, replacement in raw)
    except (re.error, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: phrases are [pattern, replacement] pairs: {exc}") from exc


def _word_phrases(words: dict[str, Any], where: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Words of several words ("buzón de voz") as phrases that join them, longest first."""
    ordered = sorted(words.items(), key=lambda item: (-len(str(item[0])), str(item[0])))
    return _phrases(
        (
            (
                r"\b" + r"\s+".join(re.escape(part) for part in _SEPARATOR.split(fold(k).strip())) + r"\b",
                f" {v} ",
            )
            for k, v in ordered
        ),
        where,
    )


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ValueError(f"{where} must be a non-empty list of non-empty strings")
    return tuple(raw)


@dataclass(frozen=True)
class Language:
    """One language: how to recognise it and, when supported, how to read it and answer in it."""

    code: str
    name: str
    markers: frozenset[str]
    letters: str
    supported: bool = False
    stopwords: frozenset[str] = frozenset()
    generic: frozenset[str] = frozenset()
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    phrases: tuple[tuple[re.Pattern[str], str], ...] = ()
    compounds: bool = False
    questions: tuple[str, ...] = ()
    steps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    steps_note: str = ""

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str) -> Language:
        """Raises ValueError (or KeyError for a missing field) on an invalid language file."""
        code, name = raw["code"], raw["name"]
        if not isinstance(code, str) or not re.fullmatch(r"[a-z]{2,3}", code):
            raise ValueError(f"{where}: code must be a 2- or 3-letter language code")
        markers = frozenset(fold(m) for m in _strings(raw["markers"], f"{where} markers"))
        letters = str(raw.get("letters", ""))
        if "lexicon" not in raw:
            return cls(code, str(name), markers, letters)
        lexicon = raw["lexicon"]
        words = lexicon.get("words", {})
        single = {k: v for k, v in words.items() if not _SEPARATOR.search(str(k).strip())}
        several = {k: v for k, v in words.items() if _SEPARATOR.search(str(k).strip())}
        questions = _strings(raw["questions"], f"{where} questions")
        steps = {
            entry_id: _strings(lines, f"{where} steps of {entry_id}")
            for entry_id, lines in raw.get("steps", {}).items()
        }
        return cls(
            code=code,
            name=str(name),
            markers=markers,
            letters=letters,
            supported=True,
            stopwords=frozenset(fold(w) for w in lexicon.get("stopwords", [])),
            generic=frozenset(g for w in lexicon.get("generic", []) for g in (fold(w), stem(fold(w)))),
            vocabulary=Vocabulary.from_json(single, where),
            phrases=_phrases(lexicon.get("phrases", []), where) + _word_phrases(several, where),
            compounds=bool(lexicon.get("compounds", False)),
            questions=questions,
            steps=steps,
            steps_note=str(raw["steps_note"]),
        )

    def knows(self, word: str) -> bool:
        """Whether a folded word is one of this language's words (for detection)."""
        return word in self.stopwords or word in self.generic or self.map_word(word, _NO_WORDS) is not None

    def map_word(self, word: str, critical: Vocabulary) -> list[str] | None:
        """The English words a folded word stands for, or None when this language does not know it.

        A German compound the vocabulary lacks is read as its known parts ("Druckerwarteschlange").
        """
        found = self.vocabulary.lookup(word)
        if found is None and word not in self.stopwords:
            found = critical.lookup(word)
        if found is not None:
            return found.split()
        if not self.compounds or len(word) < 2 * MIN_PART:
            return None
        # Both parts known is best; else the last part, which names the thing ("Lösegeldforderung" is a
        # demand), else the first.
        first: list[str] | None = None
        last: list[str] | None = None
        for cut in range(MIN_PART, len(word) - MIN_PART + 1):
            head = self.vocabulary.lookup(word[:cut])
            rest = word[cut:]
            for tail_word in (rest, rest[1:] if rest[:1] == "s" else ""):  # the linking s: Anmeldungsfehler
                tail = None
                if len(tail_word) >= MIN_PART:
                    tail = self.vocabulary.exact.get(tail_word) or critical.exact.get(tail_word)
                if head is not None and tail is not None:
                    return [*head.split(), *tail.split()]
                if tail is not None and last is None:
                    last = tail.split()
            if head is not None and first is None:
                first = head.split()
        return last or first


_NO_WORDS = Vocabulary()


@dataclass(frozen=True)
class Detected:
    code: str
    name: str
    supported: bool

    @property
    def english(self) -> bool:
        return self.code == ENGLISH


@dataclass(frozen=True)
class Languages:
    """Every known language (English first), and the cross-language critical words."""

    known: tuple[Language, ...]
    critical: Vocabulary
    critical_phrases: tuple[tuple[re.Pattern[str], str], ...] = ()

    @classmethod
    def from_json(cls, files: dict[str, dict[str, Any]]) -> Languages:
        """`files`: file name -> content. Raises ValueError on invalid data."""
        known: list[Language] = []
        critical = Vocabulary()
        phrases: tuple[tuple[re.Pattern[str], str], ...] = ()
        for name, raw in sorted(files.items()):
            if name == UNSUPPORTED_FILE:
                words = {word: english for english, ws in raw["critical"].items() for word in ws}
                single = {w: e for w, e in words.items() if not _SEPARATOR.search(w.strip())}
                critical = Vocabulary.from_json(single, name)
                phrases = _word_phrases(
                    {w: e for w, e in words.items() if _SEPARATOR.search(w.strip())}, name
                )
                known.extend(
                    Language.from_json({"code": code, **language}, name)
                    for code, language in raw["languages"].items()
                )
            else:
                language = Language.from_json(raw, name)
                if name != f"{language.code}.json":
                    raise ValueError(f"{name}: a language file is named after its code")
                known.append(language)
        codes = [language.code for language in known]
        if ENGLISH not in codes or len(set(codes)) != len(codes):
            raise ValueError("the languages need English and distinct codes")
        known.sort(key=lambda language: language.code != ENGLISH)  # English first: it wins ties
        return cls(tuple(known), critical, phrases)

    def get(self, code: str) -> Language | None:
        return next((language for language in self.known if language.code == code), None)

    def detect(self, text: str, is_english_word: Callable[[str], bool]) -> Detected:
        """The ticket's language by its function words, its words and its letters; English by default.

        A short or unclear ticket ("laptop", "asdf") stays English. A ticket partly in another script
        (which the agent cannot read), or of several words hardly any of which are English, is
        undetermined: read with the critical words, never auto-resolved.
        """
        undetermined = Detected(UNDETERMINED, "an undetermined language", False)
        if non_latin_share(text) > NON_LATIN_MAX:
            return undetermined
        words = words_of(text)
        lowered = text.lower()
        best: tuple[float, Language] | None = None
        english_score = 0.0
        for language in self.known:
            markers = language.markers
            score = float(sum(1 for w in words if w in markers))
            if language.code == ENGLISH:
                # English's own words count less: other languages borrow them ("laptop", "VPN")
                score += _BORROWED_WEIGHT * sum(1 for w in words if w not in markers and is_english_word(w))
            elif language.supported:
                score += _VOCABULARY_WEIGHT * sum(
                    1 for w in words if w not in markers and not is_english_word(w) and language.knows(w)
                )
            letters = sum(min(lowered.count(c), _LETTER_CAP) for c in set(language.letters))
            score += _LETTER_WEIGHT * letters
            if language.code == ENGLISH:
                english_score = score
            if best is None or score > best[0]:
                best = (score, language)
        assert best is not None
        score, language = best
        if language.code != ENGLISH and score >= MIN_EVIDENCE and score > english_score:
            return Detected(language.code, language.name, language.supported)
        english = self.known[0]
        if len(words) >= MIN_WORDS_TO_JUDGE:
            share = sum(1 for w in words if w in english.markers or is_english_word(w)) / len(words)
            if share < MIN_ENGLISH_SHARE:
                return undetermined
        return Detected(ENGLISH, english.name, True)


def read_languages(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every language file of the folder (the shipped one by default), by file name."""
    folder = folder or DEFAULT_LANGUAGES_DIR
    return {path.name: read_json(path) for path in sorted(folder.glob("*.json"))}


@dataclass(frozen=True)
class Reader:
    """Normalises a ticket that is not English into the English lexicon's tokens.

    `language` None: a language the agent does not support, read only with the critical words (and the
    English words it borrows, such as "laptop" or "VPN").
    """

    english: Lexicon
    language: Language | None
    critical: Vocabulary
    critical_phrases: tuple[tuple[re.Pattern[str], str], ...] = ()

    def normalise(self, text: str) -> list[tuple[str, str]]:
        """Every word as (token, surface word), like `Lexicon.normalise`."""
        # English contractions stay one word ("doesn't" -> "doesnt"), as the English lexicon reads them.
        text = _SEPARATOR.sub(" ", _CONTRACTION.sub("nt", fold(text[:MAX_CHARS])))
        own = self.language.phrases if self.language else ()
        phrases = own + self.critical_phrases + self.english.phrases
        for pattern, replacement in phrases:
            text = pattern.sub(replacement, text)
        words: list[tuple[str, str]] = []
        for raw in _WORD.findall(text):
            if len(raw) < 2:
                continue
            if self.language is not None:
                mapped = self.language.map_word(raw, self.critical)
                if mapped is None and raw in self.language.stopwords:
                    words.append((raw, raw))
                    continue
            else:
                found = self.critical.lookup(raw)
                mapped = found.split() if found else None
            for word in mapped or [raw]:
                word = self.english.synonyms.get(word, word)
                words.append((word if word in self.english.stopwords else stem(word), raw))
        return words

    def is_content(self, token: str) -> bool:
        if not self.english.is_content(token):
            return False
        return self.language is None or (
            token not in self.language.stopwords and token not in self.language.generic
        )
