"""`evaluation_run`: the pipeline against a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from evaluations.models import Evaluation
from evaluations.pipeline.llm import reset_circuit_breakers
from evaluations.services import evaluation_run
from queueing.errors import PermanentError, TransientError
from tests.evaluations.factories import EvaluationFactory, UploadFactory

pytestmark = pytest.mark.django_db

CV_MARKER = "Zanzibar-Quokka-7731"  # personal data that must never reach logs
CV_KEYS = [
    "technical_skills",
    "experience_level",
    "relevant_achievements",
    "cultural_fit",
]
PROJECT_KEYS = [
    "correctness",
    "code_quality",
    "resilience",
    "documentation",
    "creativity",
]


def completion(content: dict) -> Response:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "model-a",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(content)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
    }
    return Response(json.dumps(body), status=200, content_type="application/json")


def fake_llm(request: Request) -> Response:
    system = json.loads(request.data)["messages"][0]["content"]
    if system.startswith("You write the overall summary"):
        return completion({"overall_summary": "Strong candidate; move forward."})
    keys = CV_KEYS if "hiring manager screening" in system else PROJECT_KEYS
    return completion(
        {
            "scores": [
                {"key": key, "score": 4, "rationale": f"Evidence for {key}."}
                for key in keys
            ],
            "feedback": "Clear strengths, a few gaps.",
        }
    )


@pytest.fixture
def llm(settings, httpserver: HTTPServer) -> Iterator[HTTPServer]:  # type: ignore[no-untyped-def]
    reset_circuit_breakers()
    settings.LLM_API_KEY = "test-key"
    settings.LLM_BASE_URL = httpserver.url_for("/v1")
    settings.LLM_MODELS = ["model-a"]
    settings.LLM_MAX_RETRIES = 0
    yield httpserver
    reset_circuit_breakers()


def job() -> Evaluation:
    cv = UploadFactory(
        kind="cv",
        text=f"{CV_MARKER}. Senior backend engineer: Python, Django, Kafka, "
        "PostgreSQL, LLM chaining and RAG.",
    )
    project = UploadFactory(
        kind="project",
        owner=cv.owner,
        text="An evaluation service with a job queue, retries and an LLM chain.",
    )
    return EvaluationFactory(owner=cv.owner, cv=cv, project=project)


def test_completed_with_scores_from_code_and_provenance(
    llm: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        fake_llm
    )
    evaluation = job()
    successes = {"model": "model-a", "outcome": "success"}
    calls_before = REGISTRY.get_sample_value("llm_requests_total", successes) or 0
    with caplog.at_level(logging.DEBUG):
        assert evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    assert (
        REGISTRY.get_sample_value("llm_requests_total", successes) == calls_before + 3
    )
    evaluation.refresh_from_db()
    assert evaluation.status == "completed"
    # Every criterion scored 4: Σw·4/5 = 0.8 and Σw·4·2 = 8.0, whatever the weights.
    assert evaluation.cv_match_rate == Decimal("0.80")
    assert evaluation.project_score == Decimal("8.0")
    assert evaluation.overall_summary == "Strong candidate; move forward."
    assert [row["key"] for row in evaluation.breakdown["cv"]] == CV_KEYS
    assert [row["key"] for row in evaluation.breakdown["project"]] == PROJECT_KEYS
    provenance = evaluation.provenance
    assert provenance["provider"] == "openai_compatible"
    assert provenance["model"] == "model-a"
    assert provenance["prompt_version"]
    assert provenance["retrieval_backend"] == "postgres_fts"
    assert provenance["prompt_tokens"] == 360 and provenance["completion_tokens"] == 120
    assert provenance["llm_calls"] == 3
    assert provenance["attempts"] == 1
    assert {"retrieval", "total"} <= set(provenance["durations_ms"])
    assert len(llm.log) == 3
    assert all(CV_MARKER not in record.getMessage() for record in caplog.records)


def test_transient_failure_is_handed_back_then_fails_on_the_final_attempt(
    llm: HTTPServer,
) -> None:
    llm.expect_request("/v1/chat/completions").respond_with_data("busy", status=503)
    evaluation = job()
    with pytest.raises(TransientError) as first:
        evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    assert first.value.code == "llm_unavailable"
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.error_code) == ("queued", "llm_unavailable")

    reset_circuit_breakers()
    with pytest.raises(TransientError):
        evaluation_run(evaluation_id=evaluation.id, final_attempt=True)
    evaluation.refresh_from_db()
    assert evaluation.status == "failed"
    assert evaluation.error_code == "llm_unavailable"
    assert "unavailable" in evaluation.error_message
    assert evaluation.attempts == 2


def test_permanent_failure_fails_at_once(llm: HTTPServer) -> None:
    llm.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "invalid api key"}}, status=401
    )
    evaluation = job()
    with pytest.raises(PermanentError):
        evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.error_code) == ("failed", "llm_rejected")
    assert "invalid api key" not in evaluation.error_message  # no vendor internals


def test_without_a_key_the_offline_provider_runs_and_says_so(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_API_KEY = ""
    evaluation = job()
    assert evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    evaluation.refresh_from_db()
    assert evaluation.status == "completed"
    assert evaluation.provenance["provider"] == "offline"
    assert 0 <= evaluation.cv_match_rate <= 1
    assert 1 <= evaluation.project_score <= 10


def test_a_finished_job_is_skipped(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_API_KEY = ""
    evaluation = job()
    assert evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    evaluation.refresh_from_db()
    finished_at = evaluation.finished_at
    assert not evaluation_run(evaluation_id=evaluation.id, final_attempt=False)
    evaluation.refresh_from_db()
    assert evaluation.finished_at == finished_at and evaluation.attempts == 1


def test_overrides_replace_the_openings_documents(settings) -> None:  # type: ignore[no-untyped-def]
    from evaluations.pipeline.retrieval import PostgresFullTextBackend
    from evaluations.services import evaluation_chain_input

    evaluation = job()
    evaluation.job_description_override = "Rust systems engineer for embedded devices."
    evaluation.study_case_brief_override = "Write a firmware updater."
    evaluation.save()
    chain_input = evaluation_chain_input(
        evaluation=evaluation, backend=PostgresFullTextBackend()
    )
    assert chain_input.job_description.startswith("Rust systems engineer")
    assert chain_input.study_case_brief == "Write a firmware updater."
    assert len(chain_input.cv_criteria) == 4 and len(chain_input.project_criteria) == 5
