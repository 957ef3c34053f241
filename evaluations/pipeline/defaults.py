"""The default job opening: "Product Engineer (Backend)".

These are the documents the service evaluates against when a request names no
opening. A data migration seeds them, and the offline provider's tests use
them, so they read like a real posting. Weights are strings so they convert to
`Decimal` exactly.
"""

from __future__ import annotations

from typing import Final

DEFAULT_JOB_TITLE: Final = "Product Engineer (Backend)"

DEFAULT_JOB_DESCRIPTION: Final = """\
Product Engineer (Backend)

About the role
We are looking for a Product Engineer with a strong backend focus to help build \
the AI-powered features at the heart of our hiring platform. You will design, \
build and operate the services that turn documents, job data and large language \
models (LLMs) into reliable product features used by recruiters every day. You \
will work in a small, cross-functional squad with product managers, designers \
and other engineers, and you will own features end to end: from shaping the \
problem with the team, through design and implementation, to running them in \
production.

What you will do
- Design and build backend services and REST APIs in Python or Go that are fast, \
well tested and easy to change.
- Model data and write efficient queries for relational databases, mainly \
PostgreSQL; design schemas and migrations that keep data consistent.
- Build asynchronous processing with message queues and event streaming (Kafka \
or Redpanda), with idempotent consumers, retries and dead-letter handling.
- Integrate LLM APIs (OpenAI-compatible providers) into product features: prompt \
design, LLM chaining, retrieval-augmented generation (RAG) with embeddings and \
vector databases, structured JSON output and evaluation of prompt quality.
- Make AI features resilient: handle timeouts, rate limits, retries with \
backoff, non-deterministic model output and provider outages gracefully.
- Deploy and run services on cloud infrastructure (AWS or GCP) with Docker, \
Kubernetes and CI/CD pipelines; add the logging, metrics and alerts you need to \
operate them.
- Write automated tests (unit, integration and end-to-end) and take part in code \
reviews that keep the codebase healthy.
- Collaborate with product and design to break down problems, write clear \
technical documentation and share knowledge with the team.

What we are looking for
- 3+ years of professional experience building backend systems in production, \
with Python (Django, FastAPI or Flask) or Go.
- Solid understanding of REST API design, HTTP, authentication and API \
versioning.
- Experience with PostgreSQL or another relational database, including query \
optimisation and transactions.
- Experience with message queues or streaming platforms such as Kafka, \
Redpanda, RabbitMQ or Redis-based job queues.
- Hands-on exposure to LLMs: prompt engineering, chaining, RAG, embeddings and \
vector databases (for example pgvector, Qdrant or Pinecone).
- Familiarity with cloud platforms (AWS or GCP), Docker and Kubernetes, and \
CI/CD.
- A habit of writing tests and clean, modular code, and of explaining your \
technical decisions and trade-offs.
- Good communication and collaboration skills; you like mentoring and learning \
from others and you take ownership of outcomes.

Nice to have
- Experience with microservices and distributed systems at scale.
- Experience with observability tooling (Prometheus, Grafana, OpenTelemetry).
- Contributions to open-source projects or technical writing.
"""

DEFAULT_STUDY_CASE_BRIEF: Final = """\
Case study: AI CV and project evaluator

Objective
Build a backend service that helps a hiring team screen candidates. The service \
accepts a candidate's CV and a project report, evaluates them against a job \
vacancy and a case-study brief using an LLM pipeline, and returns a structured \
evaluation report.

Requirements
1. API endpoints
- POST /upload accepts the CV and the project report (PDF, DOCX or plain text), \
extracts and stores their text, and returns an id for each document.
- POST /evaluate takes the document ids and the job title, starts an \
asynchronous evaluation job and returns the job id immediately with status \
"queued".
- GET /result/{id} returns the job status ("queued", "processing", "completed" \
or "failed") and, once completed, the evaluation result.

2. Evaluation pipeline (LLM chaining)
- Step 1, CV evaluation: compare the CV with the job description and the CV \
scoring rubric; produce a score from 1 to 5 for each rubric criterion and \
written feedback.
- Step 2, project evaluation: compare the project report with this case-study \
brief and the project scoring rubric; produce per-criterion scores and \
feedback.
- Step 3, final analysis: combine both results into an overall summary with a \
recommendation.
- Compute cv_match_rate (0 to 1) and project_score (1 to 10) from the weighted \
rubric scores.
- Use well-designed prompts with a clear system prompt and structured JSON \
output, and validate the output before using it.

3. Retrieval (RAG)
- Ingest the job description, the case-study brief and the scoring rubrics into \
a retrieval store (a vector database, embeddings or full-text search).
- Retrieve the most relevant context for each step and inject it into the \
prompts.

4. Asynchronous processing
- Run evaluations as background jobs through a job queue (for example Kafka, \
Redpanda or another message queue) so the API never blocks on the LLM.
- Jobs must survive worker restarts and must not be lost or processed twice.

5. Resilience and error handling
- LLM APIs fail: handle timeouts, rate limits (HTTP 429) and server errors with \
retries and exponential backoff, and fall back to another model when one is \
unavailable.
- LLM output is non-deterministic: use a low temperature, validate the JSON \
structure and ranges, and retry or repair invalid answers.
- Return clear error codes and messages for invalid input, and mark failed \
jobs as failed with the reason.

6. Documentation
- A README with setup and run instructions, an explanation of the design and \
architecture, the prompt design and chaining, and the trade-offs you made and \
what you would improve with more time.

Bonus
- Tests (unit and integration), Docker and docker compose, CI, observability \
(logs and metrics), authentication, a small dashboard or admin screen, and an \
evaluation of prompt quality or consistency.

Deliverables
A repository with the source code and the README, plus a short report that \
describes your solution, the design decisions, the results you observed and \
the limitations.
"""

DEFAULT_CV_CRITERIA: Final = (
    {
        "key": "technical_skills",
        "name": "Technical Skills Match",
        "weight": "0.40",
        "guide": (
            "Alignment with the job requirements: backend languages and "
            "frameworks, databases, APIs, cloud, and AI/LLM work. "
            "1 = irrelevant skills; 2 = few overlaps; 3 = partial match; "
            "4 = strong match; 5 = excellent match including hands-on AI/LLM "
            "experience."
        ),
    },
    {
        "key": "experience_level",
        "name": "Experience Level",
        "weight": "0.25",
        "guide": (
            "Years of relevant experience and the complexity of the projects. "
            "1 = under 1 year or trivial projects; 2 = 1-2 years; 3 = 2-3 years "
            "with mid-scale projects; 4 = 3-4 years with a solid track record; "
            "5 = 5+ years or high-impact, complex projects."
        ),
    },
    {
        "key": "relevant_achievements",
        "name": "Relevant Achievements",
        "weight": "0.20",
        "guide": (
            "Impact of past work: scaling, performance, reliability, adoption, "
            "with measurable outcomes. 1 = no clear achievements; 2 = minimal "
            "improvements; 3 = some measurable outcomes; 4 = significant "
            "contributions; 5 = major, measurable impact."
        ),
    },
    {
        "key": "cultural_fit",
        "name": "Cultural / Collaboration Fit",
        "weight": "0.15",
        "guide": (
            "Communication, learning mindset, teamwork and leadership. "
            "1 = not demonstrated; 2 = minimal; 3 = average; 4 = good; "
            "5 = excellent and well demonstrated (e.g. mentoring, leading, "
            "cross-functional work)."
        ),
    },
)

DEFAULT_PROJECT_CRITERIA: Final = (
    {
        "key": "correctness",
        "name": "Correctness (Prompt & Chaining)",
        "weight": "0.30",
        "guide": (
            "Implements the brief: API endpoints, asynchronous jobs, prompt "
            "design, LLM chaining, RAG context injection and scoring. "
            "1 = not implemented; 2 = minimal attempt; 3 = works partially; "
            "4 = works correctly; 5 = fully correct and thoughtful."
        ),
    },
    {
        "key": "code_quality",
        "name": "Code Quality & Structure",
        "weight": "0.25",
        "guide": (
            "Clean, modular, reusable, typed and tested code. 1 = poor; "
            "2 = some structure; 3 = decent modularity; 4 = good structure and "
            "some tests; 5 = excellent quality and strong tests."
        ),
    },
    {
        "key": "resilience",
        "name": "Resilience & Error Handling",
        "weight": "0.20",
        "guide": (
            "Handles long-running jobs, retries with backoff, timeouts, "
            "randomness of LLM output and API failures. 1 = missing; "
            "2 = minimal; 3 = partial handling; 4 = solid handling; "
            "5 = robust and production-ready."
        ),
    },
    {
        "key": "documentation",
        "name": "Documentation & Explanation",
        "weight": "0.15",
        "guide": (
            "README clarity, setup instructions, design explanation and "
            "trade-offs. 1 = missing; 2 = minimal; 3 = adequate; 4 = clear; "
            "5 = excellent and insightful."
        ),
    },
    {
        "key": "creativity",
        "name": "Creativity / Bonus",
        "weight": "0.10",
        "guide": (
            "Useful extras beyond the brief (e.g. dashboards, metrics, "
            "deployment, CI, authentication, prompt evaluation). 1 = none; "
            "2 = very basic; 3 = useful extras; 4 = strong enhancements; "
            "5 = outstanding creativity."
        ),
    },
)
