"""The knowledge base: its entries, its lexicon, and the version they make together.

The version is derived from the data: a declared name such as ``kb-2025.11.1+1a2b3c4d`` keeps its name
and takes the hash of the knowledge base's, the lexicon's and the language files' content, so any edit (a
synonym, a trigger, a step, a word of a language) is a new agent version in the provenance whether or not
someone remembered to bump the name. The shipped file declares the hash it was written with (a unit test
keeps the two equal). A version declared without ``+`` (a hand-made knowledge base, as in tests) is taken
as written.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shared.agent.embedded.languages import Languages, read_languages
from shared.agent.embedded.rules import Rule
from shared.agent.embedded.text import DEFAULT_LEXICON_PATH, Lexicon, read_json

DEFAULT_KB_PATH = Path(__file__).parents[1] / "knowledge_base.json"

KINDS = ("fix", "service_request", "incident")
SEVERITIES = ("low", "medium", "high", "critical")
COMPLEXITIES = ("low", "medium", "high")

# How much each field's words count in the entry's terms.
_FIELD_WEIGHTS = {"title": 2, "keywords": 2, "examples": 1}
HASH_CHARS = 8


def content_hash(
    knowledge_base: dict[str, Any], lexicon: dict[str, Any], languages: dict[str, dict[str, Any]]
) -> str:
    """A short hash of everything but the declared version, independent of key order and layout."""
    content = {
        "knowledge_base": {k: v for k, v in knowledge_base.items() if k != "version"},
        "lexicon": lexicon,
        "languages": languages,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_CHARS]


def derive_version(
    knowledge_base: dict[str, Any], lexicon: dict[str, Any], languages: dict[str, dict[str, Any]]
) -> str:
    """``name+hash`` from the declared ``name+...``; a declared version without ``+`` as written."""
    declared = knowledge_base["version"]
    if not isinstance(declared, str) or not declared:
        raise ValueError("the knowledge base needs a version")
    name, pinned, _ = declared.partition("+")
    return f"{name}+{content_hash(knowledge_base, lexicon, languages)}" if pinned else declared


@cache
def default_version() -> str:
    """The shipped data's version, read on first use (importing this module reads no file)."""
    return derive_version(read_json(DEFAULT_KB_PATH), read_json(DEFAULT_LEXICON_PATH), read_languages())


@dataclass(frozen=True)
class Entry:
    """One knowledge-base entry, with its text indexed as weighted term counts."""

    id: str
    title: str
    category: str
    kind: str
    severity: str
    suggested_team: str
    complexity: str
    steps: tuple[str, ...]
    estimated_time: str
    success_probability: float
    rules: tuple[Rule, ...]
    ticket_categories: frozenset[str]
    terms: Counter[str]

    @classmethod
    def from_json(cls, raw: dict[str, Any], lexicon: Lexicon) -> Entry:
        """Raises ValueError (or KeyError for a missing field) on an invalid entry."""
        entry_id = raw["id"]
        for field, allowed in (("kind", KINDS), ("severity", SEVERITIES), ("complexity", COMPLEXITIES)):
            if raw[field] not in allowed:
                raise ValueError(f"{entry_id}: {field} must be one of {allowed}")
        if raw["kind"] == "incident" and raw["severity"] not in ("high", "critical"):
            raise ValueError(f"{entry_id}: an incident must be high or critical")
        if not raw["steps"] or not 0 <= raw["success_probability"] <= 1:
            raise ValueError(f"{entry_id}: needs steps and a success probability in [0, 1]")
        terms: Counter[str] = Counter()
        for field, weight in _FIELD_WEIGHTS.items():
            texts = [raw[field]] if isinstance(raw[field], str) else raw[field]
            for text in texts:
                terms.update({token: weight for token in lexicon.tokenize(text) if lexicon.is_content(token)})
        return cls(
            id=entry_id,
            title=raw["title"],
            category=raw["category"],
            kind=raw["kind"],
            severity=raw["severity"],
            suggested_team=raw["suggested_team"],
            complexity=raw["complexity"],
            steps=tuple(raw["steps"]),
            estimated_time=raw["estimated_time"],
            success_probability=float(raw["success_probability"]),
            rules=tuple(Rule.parse(rule, lexicon) for rule in raw.get("triggers", [])),
            ticket_categories=frozenset(raw.get("ticket_categories", [raw["category"]])),
            terms=terms,
        )


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    lexicon: Lexicon
    entries: tuple[Entry, ...]
    languages: Languages

    @classmethod
    def load(
        cls, kb_path: Path | None = None, lexicon_path: Path | None = None, languages_dir: Path | None = None
    ) -> KnowledgeBase:
        """Reads the files (the shipped ones by default); raises ValueError on invalid data."""
        return cls.from_json(
            read_json(kb_path or DEFAULT_KB_PATH),
            read_json(lexicon_path or DEFAULT_LEXICON_PATH),
            read_languages(languages_dir),
        )

    @classmethod
    def from_json(
        cls, knowledge_base: dict[str, Any], lexicon: dict[str, Any], languages: dict[str, dict[str, Any]]
    ) -> KnowledgeBase:
        words = Lexicon.from_json(lexicon)
        entries = tuple(Entry.from_json(item, words) for item in knowledge_base["entries"])
        if not entries or len({e.id for e in entries}) != len(entries):
            raise ValueError("the knowledge base needs entries with distinct ids")
        # A language's steps for an entry this knowledge base lacks are never shown (a test keeps the
        # shipped files consistent); a smaller knowledge base, as in tests, can use the shipped languages.
        known = Languages.from_json(languages)
        return cls(derive_version(knowledge_base, lexicon, languages), words, entries, known)
