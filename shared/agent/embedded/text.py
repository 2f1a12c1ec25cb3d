"""Text normalisation: a ticket's words as tokens that the rules and the matcher compare.

The word lists (stop words, generic words, synonyms, joined phrases) are data, in lexicon.json beside the
knowledge base, so that editing them is a new version of the agent; this module holds only the method.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_LEXICON_PATH = Path(__file__).parents[1] / "lexicon.json"

# Long descriptions are cut: the first part of a ticket carries the problem.
MAX_CHARS = 4000

_APOSTROPHE = re.compile(r"(\w)['\u2019](\w)")
_TOKEN = re.compile(r"[a-z0-9]+")
_DOUBLE_CONSONANT = re.compile(r"([b-df-hj-km-np-rtv-xz])\1$")


def stem(word: str) -> str:
    """A deliberately small suffix stripper: enough to merge plural and tense variants."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        word = word[:-1]
    base = word
    if (
        (word.endswith("ation") and len(word) > 6)
        or (word.endswith("tion") and len(word) > 5)
        or (word.endswith("ing") and len(word) >= 6)
    ):
        word = word[:-3]
    elif (word.endswith("ed") and len(word) >= 5) or (word.endswith("ly") and len(word) >= 6):
        word = word[:-2]
    if word != base:
        word = _DOUBLE_CONSONANT.sub(r"\1", word)
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True)
class Lexicon:
    """The word lists, and the normalisation that applies them."""

    stopwords: frozenset[str]
    # Words that say nothing about *which* problem a ticket is, stemmed and not: never matched on.
    generic: frozenset[str]
    synonyms: dict[str, str]
    phrases: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Lexicon:
        """Raises ValueError (or KeyError for a missing list) on an invalid lexicon."""
        synonyms = raw["synonyms"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in synonyms.items()):
            raise ValueError("lexicon synonyms map a word to a word")
        try:
            phrases = tuple((re.compile(pattern), replacement) for pattern, replacement in raw["phrases"])
        except (re.error, TypeError, ValueError) as exc:
            raise ValueError(f"lexicon phrases are [pattern, replacement] pairs: {exc}") from exc
        generic = frozenset(raw["generic"])
        return cls(
            stopwords=frozenset(raw["stopwords"]),
            generic=generic | frozenset(stem(word) for word in generic),
            synonyms=dict(synonyms),
            phrases=phrases,
        )

    def normalise(self, text: str) -> list[tuple[str, str]]:
        """Every word of `text` as (token, surface word): lowercased, phrases joined, synonyms, stems.

        Stopwords are kept (as themselves): trigger rules need "not me" and "no one".
        """
        text = _APOSTROPHE.sub(r"\1\2", text.lower()[:MAX_CHARS])
        for pattern, replacement in self.phrases:
            text = pattern.sub(replacement, text)
        words = []
        for raw in _TOKEN.findall(text):
            if len(raw) < 2:
                continue
            word = self.synonyms.get(raw, raw)
            words.append((word if word in self.stopwords else stem(word), raw))
        return words

    def tokenize(self, text: str) -> list[str]:
        return [token for token, _ in self.normalise(text)]

    def is_content(self, token: str) -> bool:
        """Whether a token says something about what the problem is."""
        return token not in self.stopwords and token not in self.generic


def read_json(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name} must hold a JSON object")
    return raw


@cache
def default_lexicon() -> Lexicon:
    """The shipped lexicon, read on first use (importing this module reads no file)."""
    return Lexicon.from_json(read_json(DEFAULT_LEXICON_PATH))


def tokenize(text: str) -> list[str]:
    """`text` as tokens under the shipped lexicon."""
    return default_lexicon().tokenize(text)
