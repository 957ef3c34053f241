"""POST /v1/upload: accepted documents, refused ones, and the size limits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from evaluations.models import Upload
from tests.evaluations.api.conftest import Caller, assert_envelope
from tests.evaluations.api.documents import (
    CV_TEXT,
    DOC_BYTES,
    EXE_BYTES,
    PNG_BYTES,
    PROJECT_TEXT,
    docx_bytes,
    pdf_bytes,
    text_bytes,
)

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def test_upload_stores_both_documents_and_returns_their_ids(
    caller: Caller, valid_files: dict, media_root: Callable[[], list[str]]
) -> None:
    response = caller.upload_files(**valid_files)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"cv_id", "project_id"}
    cv = Upload.objects.get(id=body["cv_id"])
    project = Upload.objects.get(id=body["project_id"])
    assert (cv.kind, cv.content_type, cv.owner) == (
        "cv",
        "application/pdf",
        caller.user,
    )
    assert project.kind == "project"
    assert project.content_type.endswith("wordprocessingml.document")
    assert "Django" in cv.text and "Kafka" in project.text
    assert cv.original_filename == "cv.pdf"
    assert cv.sha256 == hashlib.sha256(valid_files["cv"][1]).hexdigest()
    assert cv.size_bytes == len(valid_files["cv"][1])
    # Stored under generated names, never the client's.
    assert media_root() == sorted([cv.file.name, project.file.name])
    assert "cv.pdf" not in cv.file.name


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cv.txt", text_bytes()),
        ("cv.md", text_bytes()),
        ("cv", text_bytes()),
        ("cv.pdf", pdf_bytes()),
        ("cv.docx", docx_bytes(CV_TEXT)),
    ],
)
def test_every_supported_type_is_accepted(
    caller: Caller, name: str, content: bytes
) -> None:
    response = caller.upload_files(
        cv=(name, content), project=("report.txt", text_bytes(PROJECT_TEXT))
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("missing", ["cv", "project"])
def test_a_missing_file_is_named_in_details(
    caller: Caller, valid_files: dict, missing: str
) -> None:
    del valid_files[missing]
    response = caller.upload_files(**valid_files)
    assert_envelope(response, 400, "INVALID_ARGUMENT", field=missing)
    assert not Upload.objects.filter(owner=caller.user).exists()


def test_no_files_at_all_names_the_cv_first(caller: Caller) -> None:
    response = caller.client.post("/v1/upload", {}, format="multipart")
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv")


def test_a_text_field_instead_of_a_file_is_refused(caller: Caller) -> None:
    response = caller.client.post(
        "/v1/upload", {"cv": "not a file", "project": "nor this"}, format="multipart"
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv")


def test_an_empty_file_is_refused(caller: Caller, valid_files: dict) -> None:
    valid_files["project"] = ("report.txt", b"")
    response = caller.upload_files(**valid_files)
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="project")


def test_two_files_under_one_field_are_refused(caller: Caller) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = caller.client.post(
        "/v1/upload",
        {
            "cv": [
                SimpleUploadedFile("a.txt", text_bytes()),
                SimpleUploadedFile("b.txt", text_bytes()),
            ],
            "project": SimpleUploadedFile("p.txt", text_bytes(PROJECT_TEXT)),
        },
        format="multipart",
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cv.pdf", EXE_BYTES),  # an executable dressed up as a PDF
        ("cv.exe", EXE_BYTES),
        ("cv.docx", PNG_BYTES),  # an image dressed up as a Word document
        ("cv.png", PNG_BYTES),
        ("cv.doc", DOC_BYTES),  # legacy Word
        ("cv.pdf", DOC_BYTES),
        ("cv.docx", pdf_bytes()),  # a real PDF with the wrong extension
        ("cv.pdf", text_bytes()),  # text claiming to be a PDF
        ("cv.exe", text_bytes()),
    ],
)
def test_wrong_and_lying_types_are_unsupported(
    caller: Caller,
    name: str,
    content: bytes,
    media_root: Callable[[], list[str]],
) -> None:
    response = caller.upload_files(
        cv=(name, content), project=("report.docx", docx_bytes())
    )
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE", field="cv")
    # Both files or neither: the valid project report is not kept either.
    assert not Upload.objects.filter(owner=caller.user).exists()
    assert media_root() == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("report.pdf", pdf_bytes(PROJECT_TEXT)[:-400]),  # cut off
        ("report.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF"),
        ("report.docx", b"PK\x03\x04" + b"\x00" * 100),  # a broken archive
        ("report.txt", b"   \n\t  \n"),  # nothing to read
    ],
)
def test_corrupt_or_empty_documents_are_invalid_not_server_errors(
    caller: Caller, name: str, content: bytes
) -> None:
    response = caller.upload_files(cv=("cv.txt", text_bytes()), project=(name, content))
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="project")


def test_an_encrypted_pdf_is_invalid(caller: Caller) -> None:
    import io

    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes())))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)

    response = caller.upload_files(
        cv=("cv.pdf", buffer.getvalue()), project=("r.txt", text_bytes(PROJECT_TEXT))
    )
    error = assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv")
    assert "password" in error["message"]


def test_a_file_just_over_the_limit_is_too_large(
    caller: Caller, settings: Any, media_root: Callable[[], list[str]]
) -> None:
    settings.MAX_UPLOAD_MB = 1
    response = caller.upload_files(
        cv=("cv.txt", b"a" * (MB + 1)), project=("r.txt", text_bytes(PROJECT_TEXT))
    )
    error = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE", field="cv")
    assert "1 MB" in error["message"]
    assert not Upload.objects.filter(owner=caller.user).exists()
    assert media_root() == []


def test_a_file_of_exactly_the_limit_is_accepted(caller: Caller, settings: Any) -> None:
    settings.MAX_UPLOAD_MB = 1
    line = b"Python Django PostgreSQL Kafka engineer with five years of work.\n"
    content = (line * (MB // len(line) + 1))[:MB]
    response = caller.upload_files(
        cv=("cv.txt", content), project=("r.txt", text_bytes(PROJECT_TEXT))
    )
    assert response.status_code == 201, response.content


def test_a_body_that_is_not_multipart_is_unsupported(caller: Caller) -> None:
    response = caller.client.post(
        "/v1/upload", {"cv": "x", "project": "y"}, format="json"
    )
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_the_client_file_name_is_cleaned(caller: Caller) -> None:
    response = caller.upload_files(
        cv=("../../etc/passwd.txt", text_bytes()),
        project=("..\\..\\boot.ini.txt", text_bytes(PROJECT_TEXT)),
    )
    assert response.status_code == 201, response.content
    cv = Upload.objects.get(id=response.json()["cv_id"])
    project = Upload.objects.get(id=response.json()["project_id"])
    assert cv.original_filename == "passwd.txt"
    assert "/" not in project.original_filename
    assert "\\" not in project.original_filename
