from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal

import pytest

from evaluations.pipeline import scoring
from evaluations.pipeline.chain import ChainInput, ChainResult, Criterion, Provider
from evaluations.pipeline.defaults import (
    DEFAULT_CV_CRITERIA,
    DEFAULT_JOB_DESCRIPTION,
    DEFAULT_JOB_TITLE,
    DEFAULT_PROJECT_CRITERIA,
    DEFAULT_STUDY_CASE_BRIEF,
)
from evaluations.pipeline.offline import MODEL, OfflineProvider

TODAY = datetime.date(2025, 6, 1)

STRONG_CV = """\
Aisha Rahman
Senior Backend Engineer | Jakarta, Indonesia | aisha.rahman@example.com

Summary
Backend engineer with 6+ years of experience building Python and Go services,
event-driven systems on Kafka and LLM-powered product features (RAG, prompt
chaining, embeddings). I lead a team of five engineers and care about reliable
systems, clear documentation and mentoring.

Experience
Senior Backend Engineer - Lumen Talent (HR tech), Jan 2022 - Present
- Led a team of 5 engineers building an AI screening service in Python (Django,
  FastAPI) and Go.
- Designed a RAG pipeline with OpenAI embeddings and pgvector; improved answer
  relevance by 35% on our evaluation set.
- Built LLM chaining with structured JSON output and schema validation; cut
  invalid model outputs from 8% to 0.5%.
- Moved background jobs from Redis queues to Kafka with idempotent consumers,
  now handling 2 million events per day.
- Reduced p95 API latency by 40% (from 420 ms to 250 ms) through PostgreSQL query
  optimisation and caching.
- Mentored three junior engineers and ran weekly code reviews and design reviews.

Backend Engineer - Kirana Pay (fintech), Mar 2018 - Dec 2021
- Built REST APIs and microservices in Go and Python for a payments platform
  serving 1.2 million users.
- Owned the PostgreSQL schema and migrations; scaled the ledger service to 3,000
  requests per second.
- Introduced Docker, Kubernetes (GKE) and GitHub Actions CI/CD; deployments went
  from weekly to 20 per day.
- Increased test coverage from 45% to 85% with pytest and Go integration tests.
- Collaborated with product managers and designers in a cross-functional squad;
  presented our architecture at an internal engineering forum.

Skills
Languages: Python, Go, SQL
Frameworks: Django, FastAPI, Flask
Data and messaging: PostgreSQL, Redis, Kafka, Redpanda, Elasticsearch
AI/LLM: OpenAI API, prompt engineering, RAG, embeddings, pgvector, Qdrant, LangChain
Cloud and DevOps: AWS, GCP, Docker, Kubernetes, Terraform, GitHub Actions,
Prometheus, Grafana
Practices: unit and integration testing, TDD, code reviews, on-call

Education
B.Sc. Computer Science, Universitas Indonesia, 2013 - 2017

Other
Speaker at PyCon Indonesia 2023 (talk on retries, timeouts and LLMs in
production). Open-source contributor to a Django job-queue library.
"""

STRONG_PROJECT = """\
AI CV Evaluator - project report

Overview
I built the evaluator as a Django and Django REST framework service backed by
PostgreSQL, with a Kafka (Redpanda in production) job queue and an LLM chain
with retrieval. This report explains the architecture, the prompt design, how
failures are handled, and the trade-offs I made.

API endpoints
- POST /upload accepts the CV and the project report as PDF, DOCX or plain text.
  The type is detected from magic bytes; text extraction uses pypdf and
  python-docx, and the extracted text is stored with the file.
- POST /evaluate validates the ids, stores a job with status "queued" and
  publishes it to Kafka after the database transaction commits. An
  Idempotency-Key header makes retried requests safe.
- GET /result/{id} returns the job status and, once completed, cv_match_rate,
  project_score, feedback and the overall summary. The OpenAPI schema and
  Swagger docs are generated, and the README has curl examples.

Evaluation pipeline
The chain has three steps: CV evaluation, project evaluation and a final
summary. Each step uses a versioned system prompt that describes the evaluator
role and the exact JSON schema to return, and a user message with the rubric
and the retrieved context (RAG). The job description, brief and rubric are
chunked and ranked with PostgreSQL full-text search, or with embeddings stored
in pgvector when an embeddings model is configured. Answers are validated
against the schema; an invalid answer gets one repair attempt. The final
cv_match_rate and project_score are computed in code from the weighted rubric,
never taken from the model.

Resilience
The LLM client retries timeouts, 429 rate limits (honouring Retry-After) and 5xx
errors with exponential backoff and jitter, falls back to a second model, and a
circuit breaker stops calls to a failing provider. Workers are idempotent: the
status machine uses guarded updates, offsets are committed only after the
database commit, and a worker crash leads to redelivery without duplicate
results. Exhausted jobs go to a dead-letter topic and are marked failed with a
clear error code; failed jobs can be re-run from the admin.

Code quality and testing
The code is split into modules: extraction, retrieval, the LLM client, scoring
and a thin service layer. Everything is typed and checked with mypy; ruff
handles linting and formatting. The test suite (pytest) has unit tests,
property-based tests with Hypothesis for the scoring formulas, and integration
tests against a real PostgreSQL and Kafka broker with a fake LLM server.
Coverage is 88%.

Extras
Prometheus metrics with a Grafana dashboard, Django admin screens for
reviewing evaluations, Docker and docker compose for local runs, GitHub Actions
CI, token authentication with rate limiting, and an offline provider for
running without an API key. I also ran a prompt evaluation on a golden set of
30 CVs to check the consistency of scores across runs.

Documentation and trade-offs
The README covers setup (make run or docker compose up), configuration through
environment variables, an architecture diagram and the design decisions. Trade-offs:
PostgreSQL full-text search instead of a dedicated vector database keeps the
deployment small; Kafka adds operational weight compared with a simple database
queue but gives throughput and replay. Limitations and next steps: better
chunking for long reports and a human review loop for borderline scores.
"""

JUNIOR_CV = """\
Budi Santoso
Junior Frontend Developer | Bandung | budi.santoso@example.com

Profile
Frontend developer with 1 year of professional experience building responsive
web apps with React and TypeScript. Eager to learn and grow in a supportive
team.

Experience
Junior Frontend Developer - Warung Digital, Jun 2024 - Present
- Build React components and pages for an e-commerce storefront using
  TypeScript and Tailwind CSS.
- Integrated REST APIs from the backend team into product and checkout pages.
- Improved the Lighthouse performance score from 62 to 88 by lazy-loading images.
- Write unit tests with Jest for shared UI components.
- Take part in daily stand-ups and sprint planning in an agile team.

Frontend Intern - Studio Kreatif, Jan 2024 - May 2024
- Converted Figma designs into HTML and CSS landing pages.
- Fixed layout bugs across browsers.

Projects
- Personal portfolio site built with Next.js and deployed on Vercel.
- Weather app using a public weather API and React hooks.

Skills
JavaScript, TypeScript, React, Next.js, HTML, CSS, Tailwind, Git, Figma, Jest

Education
Full-Stack Web Development Bootcamp, Hacktiv8, 2023
Diploma in Informatics, Politeknik Negeri Bandung, 2020 - 2023
"""

JUNIOR_PROJECT = """\
CV Checker - project report

I built a small web app called CV Checker. The frontend is a React app where
the user uploads a CV as a PDF file. A small Node.js server with Express reads
the PDF, sends the text to the OpenAI API (GPT-3.5) with a prompt that asks for
a score from 1 to 10 and some feedback, and shows the answer on the page.

How it works
1. The user picks a PDF and clicks "Check my CV".
2. The server extracts the text with the pdf-parse package.
3. The server calls the OpenAI chat API with my prompt and returns the answer.

The request waits for the model, so it can take 10-20 seconds. I did not add a
job queue or background processing. I did not get to the project report
evaluation or the job description matching yet.

Error handling
I wrapped the API call in try/catch and show an error message if something goes
wrong.

Testing
I tested it manually with my own CV and wrote two Jest tests for the upload
form.

Setup
Run npm install and npm start in both folders, and put your OpenAI key in a .env
file. The README explains these steps.

What I would improve
Add the other endpoints from the brief, a database to store results, and more
tests.
"""

UNRELATED_CV = """\
Marta Wijaya
Head Pastry Chef | Bali | marta.wijaya@example.com

Profile
Pastry chef with 12 years of experience in hotel and restaurant kitchens,
specialising in laminated doughs, plated desserts and chocolate work.

Experience
Head Pastry Chef - The Ubud Grand Hotel, Mar 2019 - Present
- Lead a brigade of 8 pastry cooks across breakfast, banquets and the signature
  restaurant.
- Designed seasonal dessert menus; dessert sales increased by 25% in the first
  year.
- Reduced ingredient waste by 18% by reorganising mise en place and stock
  rotation.
- Trained apprentices in viennoiserie and chocolate tempering.

Pastry Chef de Partie - Sea Breeze Resort, 2014 - 2019
- Produced up to 600 covers of desserts per night for banquets and weddings.
- Worked closely with the executive chef and the front-of-house team on menu
  tastings.

Commis Pastry Cook - Cafe Manis, 2012 - 2014
- Prepared breads, cakes and petits fours for a busy cafe.

Skills
Laminated doughs, sugar work, chocolate tempering, plated desserts, menu
costing, food safety and hygiene, kitchen team leadership

Education
Diploma in Pastry Arts, Bali Culinary School, 2010 - 2012

Awards
Gold medal, Salon Culinaire Jakarta 2021 (plated dessert category).
"""

UNRELATED_PROJECT = """\
Seasonal dessert menu - project report

Goal
Create a new dessert menu for the rainy season that uses local ingredients,
keeps food cost under 28% and can be produced by a team of six during busy
banquet nights.

Research
I visited three local farms and two chocolate makers, compared prices for
vanilla, palm sugar and cacao, and tested twelve recipes over four weeks.

Tastings
We held three tastings with the executive chef, the restaurant manager and
guests from the loyalty club. Each dish was rated on taste, look and ease of
production. Five dishes made the final menu.

Results
The new menu launched in November. Dessert sales rose by 25% compared with the
same month last year, and waste went down because we share bases between
dishes.

What I learned
Planning the prep schedule early matters as much as the recipes. Next time I
would involve the banquet team sooner.
"""


def _criteria(specs: tuple[dict[str, str], ...]) -> tuple[Criterion, ...]:
    return tuple(
        Criterion(
            key=spec["key"],
            name=spec["name"],
            weight=Decimal(spec["weight"]),
            guide=spec["guide"],
        )
        for spec in specs
    )


def _input(cv: str, project: str) -> ChainInput:
    return ChainInput(
        cv_text=cv,
        project_text=project,
        job_title=DEFAULT_JOB_TITLE,
        job_description=DEFAULT_JOB_DESCRIPTION,
        study_case_brief=DEFAULT_STUDY_CASE_BRIEF,
        cv_criteria=_criteria(DEFAULT_CV_CRITERIA),
        project_criteria=_criteria(DEFAULT_PROJECT_CRITERIA),
    )


def _run(cv: str, project: str) -> ChainResult:
    return OfflineProvider(today=TODAY).run(_input(cv, project))


@pytest.fixture(scope="module")
def strong() -> ChainResult:
    return _run(STRONG_CV, STRONG_PROJECT)


@pytest.fixture(scope="module")
def junior() -> ChainResult:
    return _run(JUNIOR_CV, JUNIOR_PROJECT)


@pytest.fixture(scope="module")
def unrelated() -> ChainResult:
    return _run(UNRELATED_CV, UNRELATED_PROJECT)


def _scores(result: ChainResult) -> dict[str, int]:
    return {s.key: s.score for s in (*result.cv_scores, *result.project_scores)}


def test_cv_match_rate_orders_the_profiles_with_clear_margins(
    strong: ChainResult, junior: ChainResult, unrelated: ChainResult
) -> None:
    assert strong.cv_match_rate >= 0.8
    assert unrelated.cv_match_rate <= 0.3
    assert strong.cv_match_rate - junior.cv_match_rate >= 0.25
    assert junior.cv_match_rate - unrelated.cv_match_rate >= 0.1


def test_project_score_orders_the_profiles_with_clear_margins(
    strong: ChainResult, junior: ChainResult, unrelated: ChainResult
) -> None:
    assert strong.project_score >= 8.5
    assert unrelated.project_score <= 3.0
    assert strong.project_score - junior.project_score >= 3
    assert junior.project_score - unrelated.project_score >= 1


def test_strong_profile_scores_high_on_every_criterion(strong: ChainResult) -> None:
    scores = _scores(strong)
    assert scores["technical_skills"] == 5
    assert scores["experience_level"] == 5
    assert scores["relevant_achievements"] == 5
    assert min(scores.values()) >= 4


def test_junior_profile_shows_its_level_and_its_gaps(junior: ChainResult) -> None:
    scores = _scores(junior)
    assert scores["technical_skills"] == 2
    assert scores["experience_level"] == 2
    assert scores["resilience"] <= 2
    assert scores["code_quality"] <= 3


def test_unrelated_profile_gets_the_lowest_technical_scores(
    unrelated: ChainResult,
) -> None:
    scores = _scores(unrelated)
    assert scores["technical_skills"] == 1
    # Twelve years in a kitchen are not experience for a backend role.
    assert scores["experience_level"] == 1
    assert scores["correctness"] == 1
    assert scores["resilience"] <= 2


def test_feedback_names_the_evidence_found_and_what_is_missing(
    strong: ChainResult, junior: ChainResult
) -> None:
    technical = strong.cv_scores[0]
    assert technical.key == "technical_skills"
    assert "Kafka" in technical.rationale
    assert "PostgreSQL" in technical.rationale
    assert "Kafka" in strong.cv_feedback
    junior_technical = junior.cv_scores[0].rationale
    assert "Missing from the CV:" in junior_technical
    missing = junior_technical.split("Missing from the CV:")[1]
    assert "Python" in missing
    assert "Kafka" in missing
    # Skills the role does not ask for are reported, but earn nothing.
    assert "Other skills in the CV: JavaScript, TypeScript, React" in junior_technical
    junior_correctness = junior.project_scores[0].rationale
    assert "asynchronous job queue" in junior_correctness.split("Missing:")[1]
    assert "circuit breaker" in junior.project_feedback


def test_rationales_cite_achievements_and_experience(strong: ChainResult) -> None:
    by_key = {score.key: score.rationale for score in strong.cv_scores}
    assert "7 quantified achievements" in by_key["relevant_achievements"]
    assert "35%" in by_key["relevant_achievements"]
    assert "7 years" in by_key["experience_level"]
    assert "senior" in by_key["experience_level"]


def test_result_is_deterministic_and_labelled_offline(strong: ChainResult) -> None:
    again = _run(STRONG_CV, STRONG_PROJECT)
    # Timings are provenance, not part of the evaluation.
    assert dataclasses.replace(again, step_durations_ms={}) == dataclasses.replace(
        strong, step_durations_ms={}
    )
    assert strong.provider == "offline"
    assert strong.model == MODEL == "offline-heuristics-v1"
    assert strong.llm_calls == 0
    assert strong.prompt_tokens == strong.completion_tokens == 0
    assert set(strong.step_durations_ms) == {"cv", "project", "summary"}
    assert "without a language model" in strong.overall_summary


def test_headline_numbers_come_from_scoring(strong: ChainResult) -> None:
    assert strong.cv_match_rate == scoring.cv_match_rate(strong.cv_scores)
    assert strong.project_score == scoring.project_score(strong.project_scores)
    assert f"{strong.cv_match_rate:.2f}" in strong.overall_summary


def test_unknown_criteria_fall_back_to_keyword_overlap() -> None:
    chain_input = dataclasses.replace(
        _input(STRONG_CV, STRONG_PROJECT),
        cv_criteria=(
            Criterion(
                key="spoken_languages",
                name="Bahasa and English",
                weight=Decimal("0.5"),
                guide="Fluent Bahasa Indonesia and English; Japanese is a plus.",
            ),
            Criterion(
                key="stack_fit",
                name="Stack fit",
                weight=Decimal("0.5"),
                guide="Python, Django and PostgreSQL.",
            ),
        ),
    )
    result = OfflineProvider(today=TODAY).run(chain_input)
    language, stack = result.cv_scores
    assert language.score <= 2
    assert "Not found:" in language.rationale
    # "stack" names the technical-skills evaluator.
    assert stack.score == 5


def test_open_ended_dates_are_anchored_on_today() -> None:
    cv = (
        "Backend Engineer - Acme, Jan 2023 - Present\n"
        "Python, Django, PostgreSQL, Kafka, Docker, AWS, LLM, RAG, REST APIs.\n"
    )

    def experience_on(today: datetime.date) -> str:
        result = OfflineProvider(today=today).run(_input(cv, ""))
        return {s.key: f"{s.score} {s.rationale}" for s in result.cv_scores}[
            "experience_level"
        ]

    assert experience_on(datetime.date(2024, 2, 1)).startswith("2 About 1 year ")
    assert experience_on(datetime.date(2030, 1, 1)).startswith("5 About 7 years ")


def test_empty_documents_get_the_minimum_without_errors() -> None:
    result = OfflineProvider(today=TODAY).run(_input("", ""))
    assert {s.score for s in result.cv_scores + result.project_scores} == {1}
    assert result.cv_match_rate == 0.2
    assert result.project_score == 2.0


def test_bad_weights_are_refused_before_scoring() -> None:
    chain_input = dataclasses.replace(
        _input(STRONG_CV, STRONG_PROJECT),
        cv_criteria=(Criterion("technical_skills", "Skills", Decimal("0.7"), ""),),
    )
    with pytest.raises(scoring.ScoringError):
        OfflineProvider(today=TODAY).run(chain_input)


def test_offline_provider_follows_the_provider_protocol() -> None:
    provider: Provider = OfflineProvider(today=TODAY)
    assert provider.name == "offline"
