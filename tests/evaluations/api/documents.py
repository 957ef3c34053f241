"""Generated documents for upload tests: real PDF, DOCX and text files."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF

CV_TEXT = """\
Dewi Lestari - Backend Engineer
Summary: Backend engineer with 5 years of experience building Python and Django
services, REST APIs on PostgreSQL, Kafka event pipelines and LLM features (RAG,
prompt chaining, embeddings).
Experience: Led a team of 4 engineers; cut p95 API latency by 40% through query
optimisation; moved background jobs to Kafka with idempotent consumers, handling
1 million events per day; raised test coverage from 50% to 85% with pytest.
Skills: Python, Django, Django REST framework, PostgreSQL, Kafka, Docker,
Kubernetes, OpenAI API, prompt engineering, CI/CD with GitHub Actions.
"""

PROJECT_TEXT = """\
Project report: AI CV evaluator
The service exposes POST /upload, POST /evaluate and GET /result/{id}. Jobs run
asynchronously through a Kafka queue with retries, exponential backoff and a
dead-letter topic. The LLM chain evaluates the CV against the job description,
then the project against the case-study brief, then writes a summary; outputs
are validated against a JSON schema with one repair attempt.
Code is organised in services and selectors with type hints; tests cover the API,
the pipeline and failure modes (timeouts, rate limits, malformed output) with
pytest. The README documents setup, design decisions and trade-offs. Bonus: a
dashboard and Prometheus metrics.
"""


def pdf_bytes(text: str = CV_TEXT) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def docx_bytes(text: str = PROJECT_TEXT) -> bytes:
    document = docx.Document()
    for paragraph in text.split("\n"):
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def text_bytes(text: str = CV_TEXT) -> bytes:
    return text.encode()


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
    b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
# A DOS/PE header: "MZ", padding with NULs, then the PE signature.
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)
# The OLE2 compound-file signature of legacy Office (.doc) files.
DOC_BYTES = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
