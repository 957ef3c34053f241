"""Retrieval of the job documents most relevant to a CV or a project report.

The opening's job description, case-study brief and rubric are cut into
overlapping chunks; a backend ranks the chunks against the candidate's text and
the best few go into the prompts. Two backends share one small protocol:
PostgreSQL full-text ranking (the default: no extra service, no tables) and
cosine similarity over embeddings from an OpenAI-compatible `/embeddings` API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from evaluations.pipeline.llm import LLMClient

Source = Literal["job_description", "study_case_brief", "rubric"]

DEFAULT_MAX_CHARS: Final = 800
DEFAULT_OVERLAP: Final = 100
# to_tsvector refuses documents over 1 MB; CVs and reports are far below this.
MAX_QUERY_CHARS: Final = 100_000
MAX_QUERY_TERMS: Final = 40
MAX_EMBEDDING_QUERY_CHARS: Final = 8_000

_PARAGRAPH_BREAK: Final = re.compile(r"\n\s*\n")
_SENTENCE_BREAK: Final = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_START_IN_TAIL: Final = re.compile(r"[.!?]\s+")


@dataclass(frozen=True)
class Chunk:
    source: Source
    index: int
    text: str


class RetrievalBackend(Protocol):
    name: str

    def rank(self, query: str, chunks: list[Chunk], top_k: int) -> list[Chunk]: ...


# --- Chunking ----------------------------------------------------------------


def chunk_text(
    text: str, *, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP
) -> list[str]:
    """Cut `text` into chunks of at most `max_chars` characters.

    Chunks end on paragraph boundaries where possible, then on line and
    sentence boundaries, and only split inside a sentence when it alone is
    longer than a chunk. A chunk that continues a paragraph starts with up to
    `overlap` characters from the end of the previous chunk, so a statement cut
    in two is still found whole in one of them; a chunk that starts a new
    paragraph needs no such context.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be at least 0 and less than max_chars")
    chunks: list[str] = []
    current: list[tuple[str, str]] = []
    length = 0
    for unit, separator in _units(text, max_chars):
        added = len(unit) + (len(separator) if current else 0)
        if current and length + added > max_chars:
            chunks.append(_join(current))
            room = max_chars - len(unit) - len(separator)
            tail = "" if separator == "\n\n" else _tail(_join(current), overlap, room)
            current = [(tail, "")] if tail else []
            length = len(tail)
            added = len(unit) + (len(separator) if current else 0)
        current.append((unit, separator))
        length += added
    if current:
        chunks.append(_join(current))
    return chunks


def _units(text: str, max_chars: int) -> Iterator[tuple[str, str]]:
    """Pieces of at most `max_chars`, each with the separator that preceded it."""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            yield paragraph, "\n\n"
            continue
        separator = "\n\n"
        for line in paragraph.split("\n"):
            for sentence in _SENTENCE_BREAK.split(line.strip()):
                if not sentence:
                    continue
                for piece in _split_long(sentence, max_chars):
                    yield piece, separator
                    separator = " "
            separator = "\n"


def _split_long(sentence: str, max_chars: int) -> Iterator[str]:
    if len(sentence) <= max_chars:
        yield sentence
        return
    piece = ""
    for word in sentence.split():
        while len(word) > max_chars:
            if piece:
                yield piece
                piece = ""
            yield word[:max_chars]
            word = word[max_chars:]
        if piece and len(piece) + 1 + len(word) > max_chars:
            yield piece
            piece = word
        else:
            piece = f"{piece} {word}" if piece else word
    if piece:
        yield piece


def _join(units: Sequence[tuple[str, str]]) -> str:
    parts: list[str] = []
    for position, (unit, separator) in enumerate(units):
        if position:
            parts.append(separator)
        parts.append(unit)
    return "".join(parts)


def _tail(chunk: str, overlap: int, room: int) -> str:
    """The end of `chunk`, at most `min(overlap, room)` characters long.

    It starts at a sentence boundary when one is close enough, else at a word
    boundary, so the overlap never begins mid-word.
    """
    limit = min(overlap, room)
    if limit <= 0:
        return ""
    if len(chunk) <= limit:
        return chunk
    tail = chunk[-limit:]
    sentence = _SENTENCE_START_IN_TAIL.search(tail)
    if sentence:
        return tail[sentence.end() :].strip()
    if not chunk[-limit - 1].isspace():
        space = re.search(r"\s", tail)
        tail = tail[space.end() :] if space else ""
    return tail.strip()


def build_chunks(
    job_description: str,
    study_case_brief: str,
    rubric_texts: Sequence[str],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    """The chunks of an opening's documents, numbered within each source."""
    chunks: list[Chunk] = []
    sources: list[tuple[Source, Sequence[str]]] = [
        ("job_description", [job_description]),
        ("study_case_brief", [study_case_brief]),
        ("rubric", rubric_texts),
    ]
    for source, texts in sources:
        index = 0
        for text in texts:
            for piece in chunk_text(text, max_chars=max_chars, overlap=overlap):
                chunks.append(Chunk(source=source, index=index, text=piece))
                index += 1
    return chunks


def retrieve(
    query: str,
    chunks: Sequence[Chunk],
    backend: RetrievalBackend,
    top_k: int = 4,
    source: Source | Collection[Source] | None = None,
) -> list[Chunk]:
    """The `top_k` chunks most relevant to `query`, optionally from some sources."""
    if source is None:
        candidates = list(chunks)
    else:
        wanted = {source} if isinstance(source, str) else set(source)
        candidates = [chunk for chunk in chunks if chunk.source in wanted]
    if top_k <= 0 or not candidates:
        return []
    if not query.strip():
        return candidates[:top_k]
    return backend.rank(query, candidates, top_k)


# --- PostgreSQL full-text search ---------------------------------------------

# PostgreSQL parses, stems and drops stop words (to_tsvector 'english'); the
# ranking is Okapi BM25 over those lexemes, in the same query. A tsquery from
# plainto_tsquery would AND every word of a whole CV and match nothing, and
# ts_rank_cd weighs a word found in every chunk as much as a rare one; BM25 sums
# over the shared lexemes (an OR) and weighs each by how few chunks contain it.
# Only the query's most distinctive lexemes (frequent in the query, rare among
# the chunks) take part, which bounds the work for long queries.
_RANK_SQL: Final = """
WITH chunk AS (
    SELECT c.position, to_tsvector('english', c.body) AS document
    FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS c(body, position)
),
chunk_term AS (
    SELECT chunk.position, entry.lexeme,
           coalesce(array_length(entry.positions, 1), 1) AS frequency
    FROM chunk, unnest(chunk.document) AS entry
),
chunk_length AS (
    SELECT position, sum(frequency) AS length FROM chunk_term GROUP BY position
),
corpus AS (
    SELECT (SELECT count(*) FROM chunk) AS chunks,
           greatest(coalesce((SELECT avg(length) FROM chunk_length), 1), 1)
               AS average_length
),
term_rarity AS (
    SELECT lexeme,
           ln(1 + ((SELECT chunks FROM corpus) - count(*) + 0.5) / (count(*) + 0.5))
               AS idf
    FROM chunk_term
    GROUP BY lexeme
),
query_term AS (
    SELECT entry.lexeme, term_rarity.idf,
           1 + ln(coalesce(array_length(entry.positions, 1), 1)) AS weight
    FROM unnest(to_tsvector('english', %(query)s)) AS entry
    JOIN term_rarity USING (lexeme)
    ORDER BY (1 + ln(coalesce(array_length(entry.positions, 1), 1)))
             * term_rarity.idf DESC,
             entry.lexeme
    LIMIT %(max_terms)s
),
score AS (
    SELECT chunk_term.position,
           sum(
               query_term.weight * query_term.idf
               * chunk_term.frequency * (%(k1)s + 1)
               / (chunk_term.frequency + %(k1)s * (1 - %(b)s + %(b)s
                  * chunk_length.length / corpus.average_length))
           ) AS rank
    FROM chunk_term
    JOIN query_term USING (lexeme)
    JOIN chunk_length USING (position)
    CROSS JOIN corpus
    GROUP BY chunk_term.position
)
SELECT chunk.position, coalesce(score.rank, 0) AS rank
FROM chunk LEFT JOIN score USING (position)
ORDER BY rank DESC, chunk.position
LIMIT %(top_k)s
"""
# The usual BM25 constants: term-frequency saturation and length normalisation.
_BM25_K1: Final = 1.2
_BM25_B: Final = 0.75


class PostgresFullTextBackend:
    """Ranks chunks with PostgreSQL's full-text search in one query.

    The chunks travel as a query parameter, so no table or index is needed:
    an opening's documents are small and change rarely.
    """

    name = "postgres_fts"

    def __init__(self, *, max_terms: int = MAX_QUERY_TERMS) -> None:
        self.max_terms = max_terms

    def rank(self, query: str, chunks: list[Chunk], top_k: int) -> list[Chunk]:
        from django.db import connection

        if not chunks or top_k <= 0:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                _RANK_SQL,
                {
                    "texts": [chunk.text for chunk in chunks],
                    "query": query[:MAX_QUERY_CHARS],
                    "max_terms": self.max_terms,
                    "k1": _BM25_K1,
                    "b": _BM25_B,
                    "top_k": top_k,
                },
            )
            rows = cursor.fetchall()
        return [chunks[position - 1] for position, _ in rows]


# --- Embeddings --------------------------------------------------------------


class EmbeddingsBackend:
    """Cosine similarity between embeddings of the query and of each chunk.

    Chunk vectors are cached per backend instance, so ranking the CV and then
    the project report against the same chunks embeds each chunk once.
    """

    name = "embeddings"

    def __init__(self, client: LLMClient, model: str) -> None:
        self.client = client
        self.model = model
        self._cache: dict[str, list[float]] = {}

    def rank(self, query: str, chunks: list[Chunk], top_k: int) -> list[Chunk]:
        if not chunks or top_k <= 0:
            return []
        missing = list(
            dict.fromkeys(c.text for c in chunks if c.text not in self._cache)
        )
        vectors = self.client.embed(
            [*missing, query[:MAX_EMBEDDING_QUERY_CHARS]], self.model
        )
        self._cache.update(zip(missing, vectors[:-1], strict=True))
        query_vector = vectors[-1]
        scored = [
            (cosine_similarity(query_vector, self._cache[chunk.text]), position)
            for position, chunk in enumerate(chunks)
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [chunks[position] for _, position in scored[:top_k]]


def cosine_similarity(left: Sequence[float], right: Sequence[float]) -> float:
    """Cosine of the angle between two vectors; 0 when either is all zeros."""
    if len(left) != len(right):
        raise ValueError("vectors of different dimensions")
    dot = math.fsum(a * b for a, b in zip(left, right, strict=True))
    norm = math.sqrt(math.fsum(a * a for a in left)) * math.sqrt(
        math.fsum(b * b for b in right)
    )
    return dot / norm if norm else 0.0
