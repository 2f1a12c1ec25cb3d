"""The embedded helpdesk agent: offline, deterministic, standard library only.

A ticket is matched against a shipped knowledge base in two layers, each in its own module:

- ``text``: normalisation (phrases, synonyms, stems) under the lexicon, which is data (lexicon.json);
- ``languages``: the ticket's language, and the language files (languages/*.json) that read Spanish,
  German, French, Portuguese and Italian into the knowledge base's English words;
- ``rules``: trigger rules that identify incidents and service requests, which similarity must not decide;
- ``bm25``: similarity over each entry's title, keywords and example phrasings, and its confidence;
- ``knowledge``: the knowledge base's entries and the version derived from its content, the lexicon's
  and the language files';
- ``agent``: ``EmbeddedAgent``, which composes them into the analysis.

Importing the package reads no file: the data is read when an agent is built or a name below is used.
"""

from __future__ import annotations

from shared.agent.embedded.agent import AGENT_KIND, EmbeddedAgent
from shared.agent.embedded.knowledge import DEFAULT_KB_PATH, Entry, KnowledgeBase, default_version
from shared.agent.embedded.rules import Rule
from shared.agent.embedded.text import DEFAULT_LEXICON_PATH, Lexicon, tokenize

__all__ = [
    "AGENT_KIND",
    "AGENT_VERSION",
    "DEFAULT_KB_PATH",
    "DEFAULT_LEXICON_PATH",
    "EmbeddedAgent",
    "Entry",
    "KnowledgeBase",
    "Lexicon",
    "Rule",
    "tokenize",
]


def __getattr__(name: str) -> str:
    # AGENT_VERSION is derived from the data, so it is computed on first use rather than at import.
    if name == "AGENT_VERSION":
        return default_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
