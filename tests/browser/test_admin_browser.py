"""The reviewer's workflow in a real browser, through the real broker and worker.

A staff user evaluates a candidate from the admin and watches the job's page
update itself until the result is in, then re-runs a failed job from the list.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from fpdf import FPDF

from evaluations.models import Evaluation
from tests.conftest import KafkaNames
from tests.evaluations.factories import EvaluationFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
]

StartWorker = Callable[..., subprocess.Popen]

# Long enough for the worker to start and the page's 2 s refresh to notice.
RESULT_TIMEOUT_MS = 30_000
MAX_SCREENSHOT_BYTES = 200 * 1024

CV_TEXT = """\
Jane Doe - Senior Backend Engineer
jane.doe@example.com

Summary
Backend engineer with 6 years of experience building Python and Django services
on PostgreSQL, Kafka and Docker, deployed to AWS with CI/CD pipelines.

Experience
Senior Backend Engineer, Acme Payments (2021 - present)
- Designed a Kafka-based job queue that processes 2 million events per day.
- Cut p95 API latency by 40% by tuning PostgreSQL queries and adding Redis caching.
- Mentored 4 engineers and led code reviews across two teams.

Backend Engineer, Example Labs (2019 - 2021)
- Built REST APIs with Django REST framework and wrote pytest suites (90% coverage).
- Integrated OpenAI and other LLM APIs with retries and rate limiting.

Skills: Python, Django, FastAPI, PostgreSQL, Redis, Kafka, Docker, Kubernetes, AWS
"""

PROJECT_TEXT = """\
AI CV Evaluator - project report

The service exposes POST /upload, POST /evaluate and GET /result/{id}. Uploads are
stored and their text extracted; evaluation runs asynchronously in a worker that
consumes jobs from Kafka, so the API answers immediately with a job id.

The LLM chain scores the CV, then the project report, then writes a summary. Each
answer is validated against a JSON schema, with one repair attempt. Retrieval
uses PostgreSQL full-text search over the job description and rubric.

Resilience: timeouts on every call, retries with exponential backoff and jitter,
a circuit breaker, and a dead-letter topic for jobs that keep failing.

Testing: unit tests for scoring and validation, integration tests against a real
PostgreSQL and Kafka, and an end-to-end test. The README documents set-up,
design decisions and trade-offs.
"""


def pdf_document(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def stop_gracefully(worker: subprocess.Popen, page: Any) -> None:
    """Stop the browser's requests and the worker before the tables are flushed.

    A killed worker's database session can still hold locks while the test
    database is truncated; a graceful stop closes it.
    """
    page.goto("about:blank")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def save_screenshot(page: Any, path: Path, **options: Any) -> None:
    page.screenshot(path=str(path), **options)
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, path


def test_evaluate_a_candidate_from_the_browser(
    staff_login: Any,
    live_server: Any,
    kafka: KafkaNames,
    start_worker: StartWorker,
    screenshot_dir: Path,
) -> None:
    worker = start_worker("--concurrency", "2")
    page = staff_login

    page.goto(f"{live_server.url}/admin/evaluations/evaluation/")
    page.click("text=Evaluate a candidate")
    assert page.locator("#id_opening option:checked").inner_text() == (
        "Product Engineer (Backend)"
    )
    page.set_input_files(
        "#id_cv",
        files=[
            {
                "name": "jane-doe-cv.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf_document(CV_TEXT),
            }
        ],
    )
    page.set_input_files(
        "#id_project",
        files=[
            {
                "name": "project-report.txt",
                "mimeType": "text/plain",
                "buffer": PROJECT_TEXT.encode(),
            }
        ],
    )
    page.click("input[name=_evaluate]")

    page.wait_for_url(
        re.compile(r"/admin/evaluations/evaluation/[0-9a-f-]{36}/change/$")
    )
    job_id = page.url.rstrip("/").split("/")[-2]
    # The page refreshes itself every 2 s until the worker has finished.
    page.locator(".field-status_display .badge-completed").wait_for(
        timeout=RESULT_TIMEOUT_MS
    )
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    assert page.locator("table.breakdown tbody tr").count() == 9
    assert "jane-doe-cv.pdf" in page.locator(".field-cv_document").inner_text()
    evaluation = Evaluation.objects.get(pk=job_id)
    assert evaluation.status == Evaluation.Status.COMPLETED
    assert evaluation.cv.original_filename == "jane-doe-cv.pdf"
    rendered_rate = page.locator(".result-summary .stat-value").first.inner_text()
    assert rendered_rate == str(evaluation.cv_match_rate)

    page.click("#toggle-nav-sidebar")  # More room for the breakdown.
    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page, screenshot_dir / "evaluation.png")

    page.goto(f"{live_server.url}/admin/")
    completed = page.locator(".card-completed .card-value")
    assert completed.inner_text() == "1"
    assert page.locator("#queue-status table").count() == 2
    # A couple of failures make the picture say more.
    for code in ("llm_unavailable", "llm_unavailable", "llm_invalid_output"):
        EvaluationFactory(
            status=Evaluation.Status.FAILED,
            error_code=code,
            finished_at=timezone.now(),
        )
    page.reload()
    assert page.locator("#failure-codes tbody tr").count() == 2
    save_screenshot(page, screenshot_dir / "dashboard.png")
    stop_gracefully(worker, page)


def test_rerun_a_failed_job_from_the_changelist(
    staff_login: Any,
    live_server: Any,
    kafka: KafkaNames,
    start_worker: StartWorker,
) -> None:
    failed = EvaluationFactory(
        status=Evaluation.Status.FAILED,
        attempts=5,
        error_code="llm_unavailable",
        error_message="The language model provider was unavailable.",
    )
    done = EvaluationFactory(
        status=Evaluation.Status.COMPLETED,
        cv_match_rate="0.50",
        project_score="5.0",
    )
    page = staff_login

    page.goto(f"{live_server.url}/admin/evaluations/evaluation/")
    page.check(f"input[name=_selected_action][value='{failed.pk}']")
    page.check(f"input[name=_selected_action][value='{done.pk}']")
    page.select_option("select[name=action]", "rerun_failed")
    page.click("button[name=index]")
    message = page.locator("ul.messagelist").inner_text()
    assert "1 failed job was queued to run again." in message
    assert "1 selected job had not failed and was left unchanged." in message
    failed.refresh_from_db()
    assert failed.status == Evaluation.Status.QUEUED
    assert failed.error_code == ""

    # Before any worker runs, the job's page shows it queued and refreshes
    # itself; it must pick up the result without anyone reloading it.
    page.goto(f"{live_server.url}/admin/evaluations/evaluation/{failed.pk}/change/")
    assert page.locator(".field-status_display .badge-queued").is_visible()
    assert page.locator("meta[http-equiv=refresh]").count() == 1
    worker = start_worker()
    page.locator(".field-status_display .badge-completed").wait_for(
        timeout=RESULT_TIMEOUT_MS
    )
    failed.refresh_from_db()
    assert failed.status == Evaluation.Status.COMPLETED
    assert failed.attempts == 6
    done.refresh_from_db()
    assert done.status == Evaluation.Status.COMPLETED
    stop_gracefully(worker, page)
