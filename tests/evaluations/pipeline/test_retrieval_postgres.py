"""Relevance of the PostgreSQL full-text backend, against the real database."""

from __future__ import annotations

import pytest

from evaluations.pipeline.defaults import (
    DEFAULT_CV_CRITERIA,
    DEFAULT_JOB_DESCRIPTION,
    DEFAULT_PROJECT_CRITERIA,
    DEFAULT_STUDY_CASE_BRIEF,
)
from evaluations.pipeline.retrieval import (
    Chunk,
    PostgresFullTextBackend,
    Source,
    build_chunks,
    retrieve,
)

pytestmark = pytest.mark.django_db

TOPIC_CHUNKS = [
    Chunk(
        "study_case_brief",
        0,
        "POST /upload accepts the CV and the project report as PDF or DOCX; the "
        "text is extracted and stored.",
    ),
    Chunk(
        "study_case_brief",
        1,
        "Evaluation pipeline with LLM chaining: the first call scores the CV "
        "against the job description, the second scores the project report "
        "against the brief, and a final call chains both results into a summary. "
        "Design the prompts carefully.",
    ),
    Chunk(
        "study_case_brief",
        2,
        "Asynchronous processing: evaluations run as background jobs through a "
        "message queue such as Kafka or Redpanda, so the API never blocks; "
        "queued jobs must survive worker restarts.",
    ),
    Chunk(
        "study_case_brief",
        3,
        "Resilience: handle LLM timeouts and rate limits with retries and "
        "exponential backoff.",
    ),
    Chunk(
        "study_case_brief",
        4,
        "Documentation: a README with setup instructions, the design and the "
        "trade-offs.",
    ),
]

CHAINING_REPORT = """\
How the evaluation works
My service chains three LLM calls. The first prompt asks the model to score the
CV against the rubric and returns JSON; the second prompt scores the project
report; the last call chains both answers into the final summary. I spent most
of my time on prompt design: each prompt has a system message, and the chain
validates every answer before the next call.
"""

QUEUE_REPORT = """\
Background processing
POST /evaluate only stores the job and publishes it to a Kafka topic. Worker
processes consume the queue, process each job in the background and commit the
offset afterwards, so queued jobs survive a worker restart. Redpanda replaces
Kafka in production.
"""


@pytest.fixture
def backend() -> PostgresFullTextBackend:
    return PostgresFullTextBackend()


def test_chaining_report_retrieves_the_chaining_chunk_first(
    backend: PostgresFullTextBackend,
) -> None:
    ranked = retrieve(CHAINING_REPORT, TOPIC_CHUNKS, backend, top_k=3)
    assert ranked[0] is TOPIC_CHUNKS[1]
    assert len(ranked) == 3


def test_queue_report_retrieves_the_queue_chunk_first(
    backend: PostgresFullTextBackend,
) -> None:
    assert retrieve(QUEUE_REPORT, TOPIC_CHUNKS, backend)[0] is TOPIC_CHUNKS[2]


def test_relevance_over_the_default_opening_documents(
    backend: PostgresFullTextBackend,
) -> None:
    rubric = [
        f"{c['name']} (weight {c['weight']}): {c['guide']}"
        for c in (*DEFAULT_CV_CRITERIA, *DEFAULT_PROJECT_CRITERIA)
    ]
    chunks = build_chunks(DEFAULT_JOB_DESCRIPTION, DEFAULT_STUDY_CASE_BRIEF, rubric)
    brief: Source = "study_case_brief"
    top = retrieve(CHAINING_REPORT, chunks, backend, top_k=1, source=brief)[0]
    assert "LLM chaining" in top.text
    top = retrieve(QUEUE_REPORT, chunks, backend, top_k=1, source=brief)[0]
    assert "Asynchronous processing" in top.text
    top = retrieve(QUEUE_REPORT, chunks, backend, top_k=1, source="job_description")[0]
    assert "Kafka" in top.text


def test_a_whole_cv_still_matches_as_an_or_query(
    backend: PostgresFullTextBackend,
) -> None:
    cv = (
        "Senior backend engineer. Six years with Python, Django and PostgreSQL. "
        "Built event-driven services on Kafka and an LLM feature with RAG and "
        "embeddings. Mentored juniors, ran code reviews, enjoys hiking. " * 20
    )
    chunks = build_chunks(DEFAULT_JOB_DESCRIPTION, "", [])
    ranked = retrieve(cv, chunks, backend, top_k=2)
    # An AND of every word of the CV would match nothing at all.
    assert any("Kafka" in chunk.text for chunk in ranked)


def test_no_shared_terms_keeps_the_original_order(
    backend: PostgresFullTextBackend,
) -> None:
    ranked = retrieve("croissant laminated dough", TOPIC_CHUNKS, backend, top_k=3)
    assert ranked == TOPIC_CHUNKS[:3]


def test_query_syntax_characters_are_harmless(
    backend: PostgresFullTextBackend,
) -> None:
    query = "O'Reilly's \\ & | ! ( ) :* <-> 'kafka' \"queue\" -- ; DROP TABLE x"
    assert retrieve(query, TOPIC_CHUNKS, backend)[0] is TOPIC_CHUNKS[2]
