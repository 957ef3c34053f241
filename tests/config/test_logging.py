"""Structured logs: one JSON object per line with the request and job ids,
credentials masked, and no CV or project text, in process and from a worker."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
from django.db import transaction

from config.logging import (
    ContextFilter,
    JsonFormatter,
    RedactingFilter,
    log_context,
    redact,
)
from evaluations.models import Evaluation, JobOpening
from evaluations.services import evaluation_enqueue, evaluation_run
from queueing.errors import PermanentError
from queueing.producer import get_publisher
from tests.conftest import KafkaNames, wait_for
from tests.evaluations.factories import (
    EvaluationFactory,
    JobOpeningFactory,
    RubricCriterionFactory,
)

CV_TEXT = (
    "Quillon Marchetti-Ybarra, backend engineer in Valparaiso. Seven years of "
    "Python and Django; led the zebrafinch ledger migration to PostgreSQL, "
    "cutting report latency by 63 percent. Phone +56 9 5555 0199."
)
PROJECT_TEXT = (
    "Project report by Quillon: the nightjar-7 evaluation service uses Django REST "
    "framework, Kafka with retries and a dead-letter topic, and a README with an "
    "architecture diagram. Tests cover the retry path with pytest."
)
PRIVATE_FRAGMENTS = ("Marchetti-Ybarra", "zebrafinch", "5555 0199", "nightjar-7")


class Lines(io.StringIO):
    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


@pytest.fixture
def json_log() -> Iterator[Lines]:
    """Everything logged anywhere, through the production filters and format."""
    stream = Lines()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


# --- Format and context ------------------------------------------------------------


def test_json_lines_carry_request_and_job_ids_and_extra_fields(
    json_log: Lines,
) -> None:
    logger = logging.getLogger("tests.logging")
    with log_context(request_id="req-1"):
        logger.info("accepted %s", "job-9", extra={"duration_ms": 12.5})
        with log_context(job_id="job-9"):
            logger.warning("running")
    logger.info("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")

    accepted, running, outside, failed = json_log.records()
    assert accepted["message"] == "accepted job-9"
    assert (accepted["request_id"], accepted["job_id"]) == ("req-1", "-")
    assert accepted["duration_ms"] == 12.5
    assert accepted["level"] == "INFO" and accepted["logger"] == "tests.logging"
    assert (running["request_id"], running["job_id"]) == ("req-1", "job-9")
    assert (outside["request_id"], outside["job_id"]) == ("-", "-")
    assert "ValueError: boom" in str(failed["exception"])
    assert str(accepted["time"]).endswith("+00:00")


def test_settings_wire_the_redacting_filter_into_the_console_handler() -> None:
    (console,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    kinds = {type(f) for f in console.filters}
    assert {ContextFilter, RedactingFilter} <= kinds


# --- Redaction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (
            "Authorization: Bearer 9f86d081884c7d659a2feaa0c55ad015",
            "Authorization: Bearer ***",
        ),
        (
            "headers={'authorization': 'Token 3b5d5c3712955042212316173ccf37be'}",
            "headers={'authorization': 'Token ***'}",
        ),
        ("login password=hunter2 user=alice", "login password=*** user=alice"),
        ('{"api_key": "abc123", "model": "x"}', '{"api_key": "***", "model": "x"}'),
        ("SECRET_KEY=s3cr3t-value", "SECRET_KEY=***"),
        ("X-Api-Key: k-12345", "X-Api-Key: ***"),
        (
            "db postgres://cv:pa55w0rd@db:5432/cv down",
            "db postgres://cv:***@db:5432/cv down",
        ),
        ("using sk-proj-abcdefghijklmnop0123", "using sk-***"),
        ("token 0123456789abcdef0123456789", "token 0123456789abcdef0123456789"),
        ("Token 0123456789abcdef0123456789", "Token ***"),
        # Counts and ordinary words stay readable.
        (
            "prompt_tokens=812 completion_tokens=95",
            "prompt_tokens=812 completion_tokens=95",
        ),
        ("the secret of good code", "the secret of good code"),
    ],
)
def test_redact(raw: str, masked: str) -> None:
    assert redact(raw) == masked


def test_secrets_are_masked_in_messages_arguments_extras_and_tracebacks(
    json_log: Lines,
) -> None:
    logger = logging.getLogger("tests.logging")
    key = "b1946ac92492d2347c6235b4d2611184"
    logger.info("request headers %s", {"Authorization": f"Token {key}"})
    logger.info("llm call", extra={"api_key": key, "headers": {"authorization": key}})
    try:
        raise ConnectionError(f"could not connect to postgres://app:{key}@db/app")
    except ConnectionError:
        logger.exception("database down")

    text = json_log.getvalue()
    assert key not in text
    first, second, third = json_log.records()
    assert first["message"] == "request headers {'Authorization': 'Token ***'}"
    assert second["api_key"] == "***"
    assert second["headers"] == {"authorization": "***"}
    assert "postgres://app:***@db/app" in str(third["exception"])


# --- An evaluation's logs, in process ------------------------------------------------


def failing_opening() -> JobOpening:
    """An opening whose CV weights do not sum to 1: scoring fails."""
    opening = cast(JobOpening, JobOpeningFactory())
    RubricCriterionFactory(opening=opening, group="cv", weight=Decimal("0.5"))
    RubricCriterionFactory(opening=opening, group="project", weight=Decimal("1"))
    return opening


def evaluation_with_private_text(**kwargs: object) -> Evaluation:
    evaluation = cast(Evaluation, EvaluationFactory(**kwargs))
    for upload, text in ((evaluation.cv, CV_TEXT), (evaluation.project, PROJECT_TEXT)):
        upload.text = text
        upload.save(update_fields=["text"])
    return evaluation


@pytest.mark.django_db
def test_running_evaluations_logs_no_cv_or_project_text(
    json_log: Lines, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_API_KEY = ""  # the offline provider
    completed = evaluation_with_private_text()
    failed = evaluation_with_private_text(opening=failing_opening())
    json_log.seek(0)
    json_log.truncate()  # only what running the jobs logs

    for evaluation in (completed, failed):
        with log_context(request_id="req-42", job_id=str(evaluation.id)):
            with contextlib.suppress(PermanentError):
                evaluation_run(evaluation_id=evaluation.id, final_attempt=True)
            # A duplicate delivery of the same job: skipped, and logged.
            evaluation_run(evaluation_id=evaluation.id, final_attempt=True)

    completed.refresh_from_db()
    failed.refresh_from_db()
    assert completed.status == Evaluation.Status.COMPLETED
    assert failed.status == Evaluation.Status.FAILED

    records = json_log.records()
    assert len(records) >= 3
    for record in records:
        assert record["request_id"] == "req-42"
        assert record["job_id"] in {str(completed.id), str(failed.id)}
    assert any(str(failed.id) in str(r["message"]) for r in records)
    text = json_log.getvalue()
    for fragment in PRIVATE_FRAGMENTS:
        assert fragment not in text, fragment


# --- A worker's output --------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_worker_writes_json_lines_with_ids_and_no_private_text(
    kafka: KafkaNames,
    start_worker: Callable[..., subprocess.Popen],
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.LLM_API_KEY = ""
    completed = evaluation_with_private_text()
    failed = evaluation_with_private_text(opening=failing_opening())
    with log_context(request_id="req-from-the-api"), transaction.atomic():
        for evaluation in (completed, failed):
            evaluation_enqueue(evaluation_id=evaluation.id)
    assert get_publisher().flush(10)

    worker = start_worker(
        "--concurrency", "2", LOG_FORMAT="json", LOG_LEVEL="DEBUG", LLM_API_KEY=""
    )

    def finished() -> bool:
        statuses = set(
            Evaluation.objects.filter(id__in=[completed.id, failed.id]).values_list(
                "status", flat=True
            )
        )
        return statuses <= set(Evaluation.TERMINAL_STATUSES)

    wait_for(finished, timeout=60)
    worker.terminate()
    worker.wait(timeout=30)

    lines = Path(worker.log_path).read_text().splitlines()  # type: ignore[attr-defined]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert records
    in_job = [r for r in records if r["job_id"] != "-"]
    assert in_job, "no line was logged while a job ran"
    for record in in_job:
        assert record["job_id"] in {str(completed.id), str(failed.id)}
        assert record["request_id"] == "req-from-the-api"
    text = "\n".join(lines)
    for fragment in PRIVATE_FRAGMENTS:
        assert fragment not in text, fragment
