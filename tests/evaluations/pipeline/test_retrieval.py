from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from evaluations.pipeline.llm import LLMClient, LLMConfig
from evaluations.pipeline.retrieval import (
    Chunk,
    EmbeddingsBackend,
    build_chunks,
    chunk_text,
    cosine_similarity,
    retrieve,
)

# --- Chunking ----------------------------------------------------------------


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n \n") == []


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("One paragraph.\n\nAnother one.") == [
        "One paragraph.\n\nAnother one."
    ]


def test_chunks_break_at_paragraphs_without_overlap() -> None:
    paragraphs = [f"Paragraph {n}. " + "filler words here " * 10 for n in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = chunk_text(text, max_chars=400, overlap=80)
    assert len(chunks) == 3
    for chunk in chunks:
        assert len(chunk) <= 400
        # Every chunk starts with a whole paragraph: no partial overlap needed.
        assert chunk.startswith("Paragraph ")
    assert "\n\n".join(chunks) == text


def test_long_paragraph_splits_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {n} talks about topic {n}." for n in range(40)]
    text = " ".join(sentences)
    chunks = chunk_text(text, max_chars=300, overlap=100)
    assert len(chunks) > 1
    for previous, chunk in itertools.pairwise(chunks):
        assert len(chunk) <= 300
        # The chunk repeats the end of the previous one, from a sentence start.
        head = chunk[: chunk.index(".") + 1]
        assert head.startswith("Sentence number ")
        assert previous.endswith(head) or head in previous
    for sentence in sentences:
        assert any(sentence in chunk for chunk in chunks)


def test_lines_of_a_long_list_stay_whole() -> None:
    text = "Requirements\n" + "\n".join(
        f"- Requirement {n}: the service must do thing {n} well." for n in range(30)
    )
    chunks = chunk_text(text, max_chars=250, overlap=0)
    for chunk in chunks:
        for line in chunk.split("\n"):
            assert line == "Requirements" or re.fullmatch(
                r"- Requirement \d+: the service must do thing \d+ well\.", line
            )


def test_words_longer_than_a_chunk_are_cut() -> None:
    chunks = chunk_text("x" * 2500, max_chars=800, overlap=100)
    assert [len(chunk) for chunk in chunks] == [800, 800, 800, 100]


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_invalid_chunk_sizes(max_chars: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", max_chars=max_chars, overlap=overlap)


_words = st.text(alphabet="abcdefghij", min_size=1, max_size=15)
_sentences = st.lists(_words, min_size=1, max_size=30).map(lambda w: " ".join(w) + ".")
_paragraphs = st.lists(_sentences, min_size=1, max_size=8).map(" ".join)
_documents = st.lists(_paragraphs, min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=150)
@given(
    text=_documents,
    max_chars=st.integers(min_value=20, max_value=900),
    overlap_share=st.floats(min_value=0, max_value=0.9),
)
def test_chunks_respect_the_size_and_lose_no_word(
    text: str, max_chars: int, overlap_share: float
) -> None:
    overlap = int(max_chars * overlap_share)
    chunks = chunk_text(text, max_chars=max_chars, overlap=overlap)
    assert chunks
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    covered = set(" ".join(chunks).replace(".", " ").split())
    assert set(text.replace(".", " ").split()) <= covered


def test_build_chunks_numbers_each_source() -> None:
    chunks = build_chunks(
        "Job description.",
        "Brief part one.\n\n" + "Brief part two. " * 80,
        ["Skills (0.40): guide.", "Experience (0.25): guide."],
    )
    sources = [(chunk.source, chunk.index) for chunk in chunks]
    assert sources[0] == ("job_description", 0)
    assert [i for s, i in sources if s == "study_case_brief"] == list(
        range(sum(1 for s, _ in sources if s == "study_case_brief"))
    )
    assert [(s, i) for s, i in sources if s == "rubric"] == [
        ("rubric", 0),
        ("rubric", 1),
    ]


# --- retrieve() --------------------------------------------------------------


class RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[list[Chunk]] = []

    def rank(self, query: str, chunks: list[Chunk], top_k: int) -> list[Chunk]:
        self.seen.append(chunks)
        return list(reversed(chunks))[:top_k]


CHUNKS = [
    Chunk("job_description", 0, "Python and Go backend services."),
    Chunk("study_case_brief", 0, "Build POST /upload and POST /evaluate."),
    Chunk("study_case_brief", 1, "Chain three LLM calls."),
    Chunk("rubric", 0, "Correctness (0.30)."),
]


def test_retrieve_filters_by_source_before_ranking() -> None:
    backend = RecordingBackend()
    found = retrieve("llm chain", CHUNKS, backend, top_k=1, source="study_case_brief")
    assert found == [CHUNKS[2]]
    assert backend.seen == [CHUNKS[1:3]]
    backend.seen.clear()
    retrieve("x", CHUNKS, backend, source=("rubric", "job_description"))
    assert backend.seen == [[CHUNKS[0], CHUNKS[3]]]


def test_retrieve_without_a_query_or_chunks() -> None:
    backend = RecordingBackend()
    assert retrieve("   ", CHUNKS, backend, top_k=2) == CHUNKS[:2]
    assert retrieve("query", [], backend) == []
    assert retrieve("query", CHUNKS, backend, top_k=0) == []
    assert backend.seen == []


# --- Embeddings backend ------------------------------------------------------

VOCABULARY = [
    "llm",
    "chain",
    "prompt",
    "step",
    "kafka",
    "queue",
    "worker",
    "job",
    "pdf",
    "docx",
    "extract",
    "readme",
    "setup",
    "retry",
    "timeout",
]

TOPIC_CHUNKS = [
    Chunk("study_case_brief", 0, "Upload endpoint: extract text from PDF and DOCX."),
    Chunk(
        "study_case_brief",
        1,
        "LLM chaining: step one scores the CV with a prompt, step two the "
        "project, the last step chains both into a summary.",
    ),
    Chunk(
        "study_case_brief",
        2,
        "Asynchronous jobs: a Kafka queue feeds workers; each job survives "
        "worker restarts.",
    ),
    Chunk("study_case_brief", 3, "Resilience: retry with backoff on timeout."),
    Chunk("study_case_brief", 4, "Documentation: a README with setup steps."),
]


def bag_of_words(text: str) -> list[float]:
    words = re.findall(r"[a-z]+", text.lower())
    return [float(sum(word.startswith(term) for word in words)) for term in VOCABULARY]


@pytest.fixture
def embedding_requests(httpserver: HTTPServer) -> list[list[str]]:
    requests: list[list[str]] = []

    def handler(request: Request) -> Response:
        texts = json.loads(request.get_data())["input"]
        requests.append(texts)
        data = [
            {"object": "embedding", "index": index, "embedding": bag_of_words(text)}
            for index, text in enumerate(texts)
        ]
        random.Random(len(texts)).shuffle(data)  # indexes, not order, count
        return Response(json.dumps({"data": data}), content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(
        handler
    )
    return requests


@pytest.fixture
def embeddings_backend(httpserver: HTTPServer) -> Iterator[EmbeddingsBackend]:
    config = LLMConfig(
        base_url=httpserver.url_for("/v1"), api_key="sk-test", models=("chat",)
    )
    client = LLMClient(config, sleep=lambda _: None)
    yield EmbeddingsBackend(client, "embed-small")
    client.close()


def test_embeddings_rank_the_chaining_chunk_first_for_a_chaining_report(
    embedding_requests: list[list[str]], embeddings_backend: EmbeddingsBackend
) -> None:
    report = (
        "My solution chains three LLM calls. The first step sends the CV with a "
        "system prompt, the second step evaluates the project with another "
        "prompt, and the final step chains the two results into a summary."
    )
    ranked = retrieve(report, TOPIC_CHUNKS, embeddings_backend, top_k=2)
    assert ranked[0] is TOPIC_CHUNKS[1]


def test_embeddings_rank_the_queue_chunk_first_for_a_queue_report(
    embedding_requests: list[list[str]], embeddings_backend: EmbeddingsBackend
) -> None:
    report = (
        "Evaluation jobs go onto a Kafka queue. A pool of workers consumes the "
        "queue, and a job is retried if its worker dies."
    )
    assert retrieve(report, TOPIC_CHUNKS, embeddings_backend)[0] is TOPIC_CHUNKS[2]


def test_chunk_embeddings_are_computed_once(
    embedding_requests: list[list[str]], embeddings_backend: EmbeddingsBackend
) -> None:
    retrieve("kafka queue", TOPIC_CHUNKS, embeddings_backend)
    retrieve("llm prompt chain", TOPIC_CHUNKS, embeddings_backend)
    assert len(embedding_requests[0]) == len(TOPIC_CHUNKS) + 1
    assert embedding_requests[1] == ["llm prompt chain"]


def test_embedding_ties_keep_the_original_order(
    embedding_requests: list[list[str]], embeddings_backend: EmbeddingsBackend
) -> None:
    ranked = retrieve("nothing in common", TOPIC_CHUNKS, embeddings_backend, top_k=3)
    assert ranked == TOPIC_CHUNKS[:3]


def test_cosine_similarity() -> None:
    assert cosine_similarity([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 1]) == 0.0
    assert cosine_similarity([1, 1], [-1, -1]) == pytest.approx(-1.0)
    assert cosine_similarity([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError):
        cosine_similarity([1], [1, 2])
