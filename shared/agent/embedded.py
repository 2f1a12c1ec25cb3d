"""Embedded helpdesk agent: offline, deterministic, standard library only.

A ticket is matched against a shipped knowledge base in two layers:

1. Rules. Incident entries (ransomware, phishing, outage, ...) and service
   requests (new hardware, access needing approval, ...) carry trigger rules.
   A matching incident rule wins over everything, then a service-request
   rule: these are the cases where a confident-looking text match to a
   self-help article would do harm, so they are not left to similarity.
2. Similarity. BM25 over each entry's title, keywords and example phrasings.
   Confidence grows with the best score, the number of distinct terms that
   matched and the margin over the runner-up, so a one-word or vague ticket
   never reaches the auto-resolve threshold.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise, product
from pathlib import Path
from typing import Any

from shared.domain.clarification import CLARIFYING_QUESTIONS

AGENT_KIND = "embedded"
# Kept equal to the "version" of knowledge_base.json (a unit test checks it), so that
# importing this module reads no file.
AGENT_VERSION = "kb-2025.11.1"

DEFAULT_KB_PATH = Path(__file__).with_name("knowledge_base.json")

KINDS = ("fix", "service_request", "incident")
SEVERITIES = ("low", "medium", "high", "critical")
COMPLEXITIES = ("low", "medium", "high")

# Confidence below which the agent asks for clarification instead of proposing an entry.
CLARIFY_BELOW = 0.5
# A fix whose runner-up is an incident/service entry this close is never proposed confidently.
RIVAL_RATIO = 0.75
RIVAL_CAP = 0.7
# Floors for rule matches: a rule is explicit evidence, independent of wording.
INCIDENT_RULE_FLOOR = 0.85
SERVICE_RULE_FLOOR = 0.82
# An incident that is only the closest text match (no rule) is still escalated from this confidence.
INCIDENT_SIMILARITY_MIN = 0.35
# Maximum distance, in tokens, between the parts of one trigger rule.
RULE_WINDOW = 12
# Long descriptions are cut: the first part of a ticket carries the problem.
MAX_CHARS = 4000

_BM25_K1 = 1.2
_BM25_B = 0.5
_FIELD_WEIGHTS = {"title": 2, "keywords": 2, "examples": 1}
_ISSUE_TYPE_WEIGHT = 1.3
_CATEGORY_BOOST = 1.15
# Score at which evidence reaches 1 - 1/e; and the most a one- or two-term match can be trusted.
_SCORE_SCALE = 6.0
_TERM_CAPS = {1: 0.45, 2: 0.85}

_STOPWORDS = frozenset(
    """
    a an the and or but if then so to of in on at by for with from into onto about as is are was were be
    been being am do does did doing have has had having i me my mine myself we us our ours you your he him
    his she her they them their it its this that these those there here what which who whom when where why
    how can could would should will shall may might must also just very really quite even again all any
    some every each other such only own same than too out over under off now please pls plz hi hello hey
    thanks thank regards cheers dear im ive id ill youre get gets got getting since after before while
    because until whenever though although yet let lets one ones like much many more most another way
    microsoft ms via per no not nor dont doesnt didnt isnt arent wasnt werent cant wont couldnt wouldnt
    shouldnt hasnt havent hadnt never
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# Words that carry no information about *which* problem a ticket is: they are dropped before matching,
# so "it doesn't work, please help asap" has nothing left to match and is sent back for clarification.
_GENERIC = frozenset(
    """
    problem problems issue issues error errors help helps helping work works worked working fix fixed
    fixing thing things stuff something anything everything nothing wrong trouble asap urgent urgently
    weird strange odd need needs needed want wants wanted able unable use used using today yesterday
    tomorrow morning afternoon evening week time times day days always sometimes suddenly anymore
    somehow someone anyone everyone support request ticket sort kind bit lot sure know think seems seem
    see look looks try tried trying
    """.split()  # noqa: SIM905
)

# Raw word -> canonical word, applied before stemming.
_SYNONYMS = {
    "wireless": "wifi",
    "wlan": "wifi",
    "webcam": "camera",
    "cam": "camera",
    "mic": "microphone",
    "mics": "microphone",
    "headphones": "headset",
    "headphone": "headset",
    "earbuds": "headset",
    "earphones": "headset",
    "airpods": "headset",
    "display": "monitor",
    "displays": "monitor",
    "notebook": "laptop",
    "macbook": "laptop",
    "pc": "computer",
    "pcs": "computer",
    "workstation": "computer",
    "licence": "license",
    "licences": "licenses",
    "mail": "email",
    "mails": "email",
    "passwd": "password",
    "pwd": "password",
    "pw": "password",
    "passcode": "password",
    "passphrase": "password",
    "teams": "msteams",
    "printer": "print",
    "printers": "print",
    "scanner": "scan",
    "scanners": "scan",
    "charger": "charge",
    "chargers": "charge",
    "hacker": "hack",
    "hackers": "hack",
    "installation": "install",
    "installer": "install",
    "spooler": "spool",
    "antimalware": "antivirus",
    "reboot": "restart",
    "rebooted": "restart",
    "rebooting": "restart",
    "unresponsive": "freeze",
    "frozen": "freeze",
    "froze": "freeze",
    "prompted": "prompt",
    "prompting": "prompt",
}

_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\bwi[\s-]?fi\b", " wifi "),
        (r"\be-mail", "email"),
        (r"\b(?:two|2|multi)[\s-]?(?:factor|step)(?:\s+(?:authentication|verification|auth))?\b", " mfa "),
        (r"\b2fa\b", " mfa "),
        (r"\b(?:log|sign)(?:s|ged|ging|ed|ing)?[\s-]?(?:in|on)(?:to)?\b", " login "),
        (r"\bout[\s-]of[\s-](?:the[\s-])?office\b", " outofoffice "),
        (r"\bauto(?:matic)?[\s-]?(?:reply|replies|responder)\b", " outofoffice "),
        (r"\booo\b", " outofoffice "),
        (r"\bblue[\s-]screen(?:\s+of\s+death)?\b", " bsod "),
        (r"\bdial[\s-]?tone\b", " dialtone "),
        (r"\bone[\s-]drive\b", " onedrive "),
        (r"\bshare[\s-]point\b", " sharepoint "),
        (r"\bset[\s-]up\b", " setup "),
        (r"\bpop[\s-]?ups?\b", " popup "),
        (r"\bcan\s?not\b", " cant "),
        (r"\bno[\s-]?one\b", " noone "),
        (r"\b([a-z]):(?=[\s\\/.,;)]|$)", r" driveletter "),
    )
)

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


def normalise(text: str) -> list[tuple[str, str]]:
    """Every word of `text` as (token, surface word): lowercased, phrases joined, synonyms, stems.

    Stopwords are kept (as themselves): trigger rules need "not me" and "no one".
    """
    text = _APOSTROPHE.sub(r"\1\2", text.lower()[:MAX_CHARS])
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    words = []
    for raw in _TOKEN.findall(text):
        if len(raw) < 2:
            continue
        word = _SYNONYMS.get(raw, raw)
        words.append((word if word in _STOPWORDS else stem(word), raw))
    return words


def tokenize(text: str) -> list[str]:
    return [token for token, _ in normalise(text)]


_STEMMED_GENERIC = _GENERIC | frozenset(stem(word) for word in _GENERIC)


def is_content(token: str) -> bool:
    """Whether a token says something about what the problem is."""
    return token not in _STOPWORDS and token not in _STEMMED_GENERIC


Phrase = tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """A trigger such as ``"lost|left + laptop|phone ! connection"`` or ``"need > new > laptop"``.

    It matches when one alternative of every group occurs within RULE_WINDOW tokens (in the written
    order when the groups are separated by ``>``) and no excluded phrase occurs anywhere in the ticket.
    """

    source: str
    groups: tuple[tuple[Phrase, ...], ...]
    exclude: tuple[Phrase, ...]
    ordered: bool

    @classmethod
    def parse(cls, source: str) -> Rule:
        positive, _, negative = source.partition("!")
        ordered = ">" in positive
        if ordered and "+" in positive:
            raise ValueError(f"rule {source!r} mixes '+' and '>'")

        def alternatives(part: str) -> tuple[Phrase, ...]:
            return tuple(phrase for alt in part.split("|") if (phrase := tuple(tokenize(alt))))

        groups = tuple(alternatives(part) for part in positive.split(">" if ordered else "+"))
        if not all(groups):
            raise ValueError(f"empty group in rule {source!r}")
        return cls(source, groups, alternatives(negative), ordered)

    def match(self, tokens: list[str]) -> list[tuple[int, int]] | None:
        """The (start, end) token span of each group, or None when the rule does not match."""
        if any(_positions(tokens, phrase) for phrase in self.exclude):
            return None
        candidates = []
        for group in self.groups:
            found = sorted((start, start + len(p)) for p in group for start in _positions(tokens, p))
            if not found:
                return None
            candidates.append(found[:20])
        return next((list(combo) for combo in product(*candidates) if self._fits(combo)), None)

    def _fits(self, combo: tuple[tuple[int, int], ...]) -> bool:
        if self.ordered and any(nxt[0] < prev[1] for prev, nxt in pairwise(combo)):
            return False
        return max(end for _, end in combo) - min(start for start, _ in combo) <= RULE_WINDOW


def _positions(tokens: list[str], phrase: Phrase) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n]) == phrase]


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
    def from_json(cls, raw: dict[str, Any]) -> Entry:
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
                terms.update({token: weight for token in tokenize(text) if is_content(token)})
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
            rules=tuple(Rule.parse(rule) for rule in raw.get("triggers", [])),
            ticket_categories=frozenset(raw.get("ticket_categories", [raw["category"]])),
            terms=terms,
        )


@dataclass(frozen=True)
class _Scored:
    entry: Entry
    score: float
    matched: tuple[str, ...]


@dataclass(frozen=True)
class _Ticket:
    category: str
    tokens: list[str]
    surface: dict[str, str]
    query: dict[str, float]

    def words(self, tokens: Iterable[str]) -> str:
        return ", ".join(f"'{self.surface.get(token, token)}'" for token in tokens)


class EmbeddedAgent:
    """Analyses a helpdesk ticket against the knowledge base; the same ticket always gets the same analysis.

    The knowledge base is read once, here; construction raises ValueError on an invalid one.
    """

    def __init__(self, kb_path: Path | None = None) -> None:
        raw = json.loads((kb_path or DEFAULT_KB_PATH).read_text(encoding="utf-8"))
        self.version: str = raw["version"]
        self.entries: tuple[Entry, ...] = tuple(Entry.from_json(item) for item in raw["entries"])
        if not self.entries or len({e.id for e in self.entries}) != len(self.entries):
            raise ValueError("the knowledge base needs entries with distinct ids")
        n = len(self.entries)
        document_frequency = Counter(term for entry in self.entries for term in entry.terms)
        self._idf = {
            term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()
        }
        self._avg_length = sum(sum(e.terms.values()) for e in self.entries) / n

    def analyse(self, ticket: dict[str, Any]) -> dict[str, Any]:
        parsed = self._parse(ticket)
        ranked = self._rank(parsed)
        for kind, floor in (("incident", INCIDENT_RULE_FLOOR), ("service_request", SERVICE_RULE_FLOOR)):
            for scored in ranked:
                if scored.entry.kind != kind:
                    continue
                spans = next((s for rule in scored.entry.rules if (s := rule.match(parsed.tokens))), None)
                if spans is not None:
                    said = parsed.words(t for start, end in spans for t in parsed.tokens[start:end])
                    reason = (
                        f"Treated as {_KIND_WORDS[kind]}: the ticket mentions {said}, which identifies "
                        f"'{scored.entry.title}' ({scored.entry.id})."
                    )
                    confidence = max(floor, self._confidence(scored, ranked, parsed))
                    return self._render(scored, ranked, confidence, reason)

        best = ranked[0]
        if best.score <= 0:
            return self._clarify(ranked, parsed, 0.05, "No knowledge-base entry shares a term with it.")
        confidence = self._confidence(best, ranked, parsed)
        terms = parsed.words(best.matched)
        if best.entry.kind == "incident" and confidence >= INCIDENT_SIMILARITY_MIN:
            reason = f"It resembles the incident '{best.entry.title}' ({best.entry.id}) on the words {terms}."
            return self._render(best, ranked, confidence, reason)
        if confidence < CLARIFY_BELOW:
            why = f"The closest entry, '{best.entry.title}', shares only the words {terms}."
            return self._clarify(ranked, parsed, confidence, why)
        reason = f"It matches '{best.entry.title}' ({best.entry.id}) on the words {terms}."
        if best.entry.kind == "fix":
            rival = next((s for s in ranked[1:] if s.entry.kind != "fix"), None)
            if rival is not None and rival.score >= RIVAL_RATIO * best.score:
                confidence = min(confidence, RIVAL_CAP)
                reason += (
                    f" It also resembles the {_KIND_WORDS[rival.entry.kind]} '{rival.entry.title}', "
                    "so a person should check before it is closed."
                )
            elif parsed.category == "security":
                confidence = min(confidence, RIVAL_CAP)
                reason += " It was filed as a security ticket, so a person should check before it is closed."
        return self._render(best, ranked, confidence, reason)

    @staticmethod
    def _parse(ticket: dict[str, Any]) -> _Ticket:
        issue_type = normalise(str(ticket.get("issue_type") or ""))
        description = normalise(str(ticket.get("description") or ""))
        query = {token: 1.0 for token, _ in description if is_content(token)}
        query.update({token: _ISSUE_TYPE_WEIGHT for token, _ in issue_type if is_content(token)})
        words = [*issue_type, ("", ""), *description]  # the gap keeps rules from spanning the two fields
        surface: dict[str, str] = {}
        for token, raw in words:
            surface.setdefault(token, raw)
        return _Ticket(
            category=str(ticket.get("category") or "other"),
            tokens=[token for token, _ in words],
            surface=surface,
            query=query,
        )

    def _rank(self, ticket: _Ticket) -> list[_Scored]:
        """Every entry with its BM25 score, best first (ties by id, so the order is stable)."""
        ranked = []
        for entry in self.entries:
            length_norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * sum(entry.terms.values()) / self._avg_length)
            score = 0.0
            matched = []
            for term, weight in ticket.query.items():
                tf = entry.terms.get(term, 0)
                if tf:
                    score += weight * self._idf[term] * tf * (_BM25_K1 + 1) / (tf + length_norm)
                    matched.append(term)
            if score and ticket.category in entry.ticket_categories:
                score *= _CATEGORY_BOOST
            ranked.append(_Scored(entry, score, tuple(sorted(matched))))
        ranked.sort(key=lambda s: (-s.score, s.entry.id))
        return ranked

    def _confidence(self, scored: _Scored, ranked: list[_Scored], ticket: _Ticket) -> float:
        """Evidence (score, distinct matched terms, share of the ticket explained) and separation."""
        if scored.score <= 0:
            return 0.0
        runner_up = next((s.score for s in ranked if s is not scored), 0.0)
        margin = max(0.0, (scored.score - runner_up) / scored.score)
        strength = 1 - math.exp(-scored.score / _SCORE_SCALE)
        known = sum(self._idf[t] for t in ticket.query if t in self._idf)
        explained = sum(self._idf[t] for t in scored.matched) / known
        confidence = strength * ((0.6 + 0.4 * margin) * (0.75 + 0.25 * explained) + 0.25 * margin)
        term_cap = _TERM_CAPS.get(len(scored.matched), 0.99)
        return round(min(confidence, term_cap), 3)

    def _render(
        self, scored: _Scored, ranked: list[_Scored], confidence: float, reason: str
    ) -> dict[str, Any]:
        entry = scored.entry
        related = [s.entry.id for s in ranked if s.score > 0 and s is not scored][:2]
        return {
            "confidence": round(confidence, 3),
            "recommended_action": _ACTIONS[entry.kind],
            "reasoning": reason,
            "analysis": {
                "severity": entry.severity,
                "category": entry.category,
                "suggested_team": entry.suggested_team,
                "complexity": entry.complexity,
            },
            "solution": {
                "steps": list(entry.steps),
                "estimated_time": entry.estimated_time,
                "success_probability": entry.success_probability,
            },
            "knowledge_base_entries": [entry.id, *related],
            "agent": {"kind": AGENT_KIND, "version": self.version},
        }

    def _clarify(self, ranked: list[_Scored], ticket: _Ticket, confidence: float, why: str) -> dict[str, Any]:
        # A vague ticket filed as security stays critical, so the decision table escalates it.
        security = ticket.category == "security"
        return {
            "confidence": round(min(confidence, CLARIFY_BELOW - 0.01), 3),
            "recommended_action": "request_clarification",
            "reasoning": f"The ticket is too vague to act on. {why}",
            "analysis": {
                "severity": "high" if security else "medium",
                "category": ticket.category,
                "suggested_team": "Security Operations" if security else "Service Desk",
                "complexity": "medium",
            },
            "solution": {
                "steps": list(CLARIFYING_QUESTIONS),
                "estimated_time": "unknown",
                "success_probability": 0.0,
            },
            "knowledge_base_entries": [s.entry.id for s in ranked if s.score > 0][:3],
            "agent": {"kind": AGENT_KIND, "version": self.version},
        }


_ACTIONS = {"fix": "auto_resolve", "service_request": "assign_to_team", "incident": "escalate"}
_KIND_WORDS = {"fix": "a known problem", "service_request": "a service request", "incident": "an incident"}
