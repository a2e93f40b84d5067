"""How a skill becomes text: fields, truncation caps, body chunks and lexical tokens.

Everything here is deterministic and dependency-free, so an index built on one machine
tokenises queries the same way on another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "QueryTokens",
    "SkillText",
    "TextCaps",
    "chunk_words",
    "overlap",
    "split_identifier",
    "tokenize",
]


class TextCaps(BaseModel):
    """Truncation and chunking policy. It changes results, so it is recorded in every decision.

    Lexical (BM25) text is `name × name_weight + description × description_weight + body`;
    dense text is one vector for the head (`name: description`) plus one per body chunk, and a
    skill's dense score is the best of its vectors (max-pooling), so long bodies are not cut at
    the embedder's token window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    description_chars: int = Field(default=1000, ge=0)
    """Characters of the description kept (both lexical and dense)."""
    body_chars: int = Field(default=8000, ge=0)
    """Characters of the body kept (both lexical and dense)."""
    chunk_words: int = Field(default=120, ge=8)
    """Words per dense body chunk (MiniLM's 256-token window holds about 180 English words,
    fewer of JSON)."""
    max_chunks: int = Field(default=4, ge=0)
    """Body chunks embedded per skill (0 = head only)."""
    description_vector: bool = True
    """Also embed the description alone (max-pooled with the head): names that are opaque
    identifiers otherwise pull the head vector away from what the skill does."""
    single_vector: bool = False
    """One dense vector per skill over head and body together, instead of head + chunks.

    For window-less static embedders on very large pools: a third of the rows, so a third of
    the query-time matrix product."""
    query_chars: int = Field(default=2000, ge=16)
    """Characters of the query kept."""
    name_weight: int = Field(default=3, ge=0)
    """How many times the name's tokens count in BM25 (field weighting by repetition)."""
    description_weight: int = Field(default=2, ge=0)
    """How many times the description's tokens count in BM25."""


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK_CHARS = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_SCRIPT_PARTS = re.compile(f"[{_CJK_CHARS}]+|[^{_CJK_CHARS}]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "get",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "should",
        "so",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "we",
        "our",
        "us",
        "want",
        "need",
        "some",
        "any",
        "there",
        "their",
        "them",
        "they",
        "have",
        "has",
        "had",
        "been",
        "into",
        "about",
        "also",
        "then",
        "than",
        "these",
        "those",
        "i'm",
        "it's",
        "let",
        "know",
        "tell",
        "give",
        "find",
        "show",
    ]
)


def split_identifier(text: str) -> str:
    """`getWeatherForecast_v2` → `get Weather Forecast v2` (camelCase, snake, kebab, dots)."""
    text = re.sub(r"[_\-./:]+", " ", text)
    return _CAMEL.sub(" ", text)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """A light, language-safe suffix stripper (plural/gerund/past forms of English words)."""
    if len(word) <= 4 or not word.isascii():
        return word
    if word.endswith(("ss", "us", "is")):
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix):
            stem = word[: -len(suffix)] + repl
            if len(stem) >= 3:
                return stem
    return word


def tokenize(text: str) -> list[str]:
    """Lexical tokens: identifiers split, NFKC, lower-cased, stop words dropped, light stemming.

    Scripts written without spaces (Chinese, Japanese, Korean) become character bigrams, so a
    query in those languages still matches skills written in them.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(_word_tokens(word))
    return out


@lru_cache(maxsize=500_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    """Tokens of one word-character run (cached: vocabularies repeat more than texts)."""
    if _CJK.search(word):
        if _CJK_RUN.fullmatch(word):
            if len(word) == 1:
                return (word,)
            return tuple(a + b for a, b in pairwise(word))
        # Mixed scripts ("创建一个GitHub仓库"): bigram the CJK parts, tokenise the rest as
        # any other word, so Latin words inside CJK text still match.
        out: list[str] = []
        for part in _SCRIPT_PARTS.findall(word):
            out.extend(_word_tokens(part))
        return tuple(out)
    return _latin_tokens(word)


def _latin_tokens(word: str) -> tuple[str, ...]:
    """Tokens of a word run without CJK characters."""
    out = []
    for part in _CAMEL.sub(" ", word.replace("_", " ")).lower().split():
        if len(part) >= 2 and part not in _STOP:
            out.append(_stem(part))
    return tuple(out)


class QueryTokens:
    """A query's lexical tokens, tokenised once per distinct text and shared by every stage.

    One retrieve-and-rerank decision reads the query's tokens in three places: BM25 retrieval
    and the term statistics read the query cut at the index's `TextCaps.query_chars`, the
    reranker's features read it as given. Handing all of them one `QueryTokens` tokenises each
    distinct text once; a query no longer than the cut is one text, tokenised once.

    The tokens of a cut query are tokenised from the cut text, never derived from the whole
    query's tokens: a cut inside a word leaves a fragment that tokenises differently
    (`"forecasting"` cut after `"forec"` gives `forec`, not `forecast`), and the Unicode
    normalisation (NFKC) of a prefix need not be a prefix of the whole text's. A query longer
    than the cut therefore costs two tokenisations, exactly the texts each stage reads.

    Args:
        text: The query.

    Attributes:
        text: The query, as given.

    Example:
        ```python
        query = QueryTokens(task)
        candidates = index.search(query, 30)
        features = candidate_features(query, candidates, index)  # no second tokenisation
        ```
    """

    __slots__ = ("_by_end", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._by_end: dict[int, tuple[str, ...]] = {}

    @classmethod
    def of(cls, query: str | QueryTokens) -> QueryTokens:
        """`query` itself when it is a `QueryTokens` already, else a new one over it."""
        return query if isinstance(query, QueryTokens) else cls(query)

    def tokens(self, chars: int | None = None) -> tuple[str, ...]:
        """`tokenize` of the query's first `chars` characters (`None` = the whole query).

        Args:
            chars: Where to cut the query, as in `text[:chars]`; a cut at or past its end is
                the whole query and shares its tokens.

        Returns:
            The tokens, computed on first request and shared afterwards (do not mutate them).
        """
        text = self.text
        end = len(text) if chars is None or chars >= len(text) else chars
        cached = self._by_end.get(end)
        if cached is None:
            cached = tuple(tokenize(text[:end]))
            self._by_end[end] = cached
        return cached


def chunk_words(text: str, size: int, limit: int) -> list[str]:
    """Split `text` into at most `limit` chunks of about `size` words (whitespace-separated).

    The last chunk absorbs a short tail (under a third of `size`) instead of standing alone.
    """
    if limit <= 0:
        return []
    words = text.split()
    if not words:
        return []
    chunks: list[str] = []
    start = 0
    while start < len(words) and len(chunks) < limit:
        end = start + size
        if len(words) - end < size // 3:
            end = len(words)
        chunks.append(" ".join(words[start:end]))
        start = end
    return chunks


class SkillText:
    """The texts one skill contributes to an index, built under a `TextCaps` policy.

    Args:
        name: The skill's name.
        description: The skill's description.
        body: The skill's full body.
        tags: The skill's tags.
        caps: The truncation policy.
    """

    __slots__ = ("body", "description", "head", "lexical", "name")

    def __init__(
        self, name: str, description: str, body: str, tags: Sequence[str], caps: TextCaps
    ) -> None:
        readable = split_identifier(name).strip()
        self.name = readable if readable.lower() == name.lower() else f"{name} ({readable})"
        desc = description[: caps.description_chars].strip()
        tag_text = ", ".join(tags)
        self.description = desc
        self.head = f"{readable or name}: {desc}" + (f" [{tag_text}]" if tag_text else "")
        self.body = body[: caps.body_chars].strip()
        self.lexical = " ".join(
            [
                *([self.name] * caps.name_weight),
                *([desc] * caps.description_weight),
                tag_text,
                self.body,
            ]
        )

    def head_texts(self, caps: TextCaps) -> list[str]:
        """The head (`name: description [tags]`), plus the description alone when enabled."""
        if caps.single_vector:
            return [f"{self.head}\n{self.body}" if self.body else self.head]
        if caps.description_vector and self.description and self.description != self.head:
            return [self.head, self.description]
        return [self.head]

    def dense_texts(self, caps: TextCaps) -> list[str]:
        """The head texts, then the body chunks; each chunk is prefixed with the name."""
        heads = self.head_texts(caps)
        if caps.single_vector:
            return heads
        chunks = chunk_words(self.body, caps.chunk_words, caps.max_chunks)
        return [*heads, *(f"{self.name}: {c}" for c in chunks)]


def overlap(query_tokens: Iterable[str], field_tokens: Iterable[str]) -> float:
    """Share of `field_tokens` (as a set) that also occur in the query."""
    field = set(field_tokens)
    if not field:
        return 0.0
    return len(field & set(query_tokens)) / len(field)
