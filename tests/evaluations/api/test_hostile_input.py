"""Hostile input: huge and truncated bodies, injection strings, odd encodings."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from evaluations.models import Evaluation, Upload
from tests.evaluations.api.conftest import Caller, assert_envelope
from tests.evaluations.api.documents import PROJECT_TEXT, text_bytes

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
GB = 1024 * MB
BOUNDARY = "hostile-boundary-7d1f"


class EndlessInput:
    """A `wsgi.input` that would produce `total` bytes, counting what is read.

    The body starts as a well-formed multipart upload of one file whose
    content never ends; nothing is ever buffered here beyond one read.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.read_bytes = 0
        self._head = (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="cv"; filename="cv.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()

    def read(self, size: int = -1) -> bytes:
        remaining = self.total - self.read_bytes
        if size is None or size < 0:
            size = remaining
        size = min(size, remaining, 4 * MB)
        start = self.read_bytes
        self.read_bytes += size
        chunk = self._head[start : start + size]
        return chunk + b"a" * (size - len(chunk))

    def readline(self, size: int = -1) -> bytes:
        return self.read(min(size, 1024) if size and size > 0 else 1024)


def _stream(caller: Caller, wsgi_input: EndlessInput, content_length: int) -> Any:
    return caller.client.generic(
        "POST",
        "/v1/upload",
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{
            "wsgi.input": wsgi_input,
            "CONTENT_LENGTH": str(content_length),
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


def test_a_2gb_body_is_refused_before_it_is_read(caller: Caller) -> None:
    wsgi_input = EndlessInput(2 * GB)
    response = _stream(caller, wsgi_input, 2 * GB)
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert wsgi_input.read_bytes == 0


def test_an_oversized_file_stops_the_read_at_the_limit(
    caller: Caller, settings: Any
) -> None:
    """A body small enough to be let in, with one file over the limit."""
    settings.MAX_UPLOAD_MB = 1
    declared = 2 * MB + 60 * 1024  # just under the body limit for 1 MB files
    wsgi_input = EndlessInput(declared)
    response = _stream(caller, wsgi_input, declared)

    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE", field="cv")
    assert wsgi_input.read_bytes < 1.2 * MB
    assert not Upload.objects.filter(owner=caller.user).exists()


def test_a_body_longer_than_its_declared_length_is_not_read_past_it(
    caller: Caller, settings: Any
) -> None:
    settings.MAX_UPLOAD_MB = 1
    wsgi_input = EndlessInput(2 * GB)
    response = _stream(caller, wsgi_input, 100 * 1024)
    # The body ends (at its declared length) without its closing delimiter.
    error = assert_envelope(response, 400, "INVALID_ARGUMENT")
    assert "incomplete" in error["message"]
    assert wsgi_input.read_bytes <= 100 * 1024


def _multipart(*parts: tuple[str, str, bytes], close: bool = True) -> bytes:
    body = io.BytesIO()
    for field, filename, content in parts:
        body.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
        )
        body.write(content + b"\r\n")
    if close:
        body.write(f"--{BOUNDARY}--\r\n".encode())
    return body.getvalue()


def _post_multipart(caller: Caller, body: bytes) -> Any:
    return caller.client.generic(
        "POST",
        "/v1/upload",
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def test_a_complete_hand_made_multipart_body_is_accepted(caller: Caller) -> None:
    body = _multipart(
        ("cv", "cv.txt", text_bytes()), ("project", "p.txt", text_bytes(PROJECT_TEXT))
    )
    assert _post_multipart(caller, body).status_code == 201


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_a_truncated_multipart_body_is_invalid(caller: Caller, cut: float) -> None:
    body = _multipart(
        ("cv", "cv.txt", text_bytes()), ("project", "p.txt", text_bytes(PROJECT_TEXT))
    )
    response = _post_multipart(caller, body[: int(len(body) * cut)])
    error = assert_envelope(response, 400, "INVALID_ARGUMENT")
    assert "incomplete" in error["message"]
    assert not Upload.objects.filter(owner=caller.user).exists()


def test_a_body_without_its_closing_delimiter_is_invalid(caller: Caller) -> None:
    body = _multipart(
        ("cv", "cv.txt", text_bytes()),
        ("project", "p.txt", text_bytes(PROJECT_TEXT)),
        close=False,
    )
    error = assert_envelope(_post_multipart(caller, body), 400, "INVALID_ARGUMENT")
    assert "incomplete" in error["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\u00e9t\u00e9",
    ],
)
def test_a_multipart_body_without_a_usable_boundary_is_invalid(
    caller: Caller, content_type: str
) -> None:
    body = _multipart(("cv", "cv.txt", text_bytes()))
    response = caller.client.generic(
        "POST", "/v1/upload", body, content_type=content_type
    )
    assert response.status_code in (400, 415)
    assert response.json()["error"]["code"] in (
        "INVALID_ARGUMENT",
        "UNSUPPORTED_MEDIA_TYPE",
    )


def test_too_many_parts_are_refused(caller: Caller) -> None:
    parts = [(f"f{i}", f"{i}.txt", b"x") for i in range(150)]
    response = _post_multipart(caller, _multipart(*parts))
    assert response.status_code in (400, 413)
    assert "error" in response.json()


INJECTIONS = [
    "' OR 1=1--",
    "'; DROP TABLE evaluations_evaluation; --",
    '" OR ""="',
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "${jndi:ldap://example.com/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "\\x00\\u0000",
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("field", ["cv_id", "project_id"])
def test_injection_strings_as_ids_are_invalid(
    caller: Caller, evaluate_body: dict, field: str, payload: str
) -> None:
    response = caller.evaluate({**evaluate_body, field: payload})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field=field)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_as_a_job_title_match_nothing(
    caller: Caller, evaluate_body: dict, payload: str
) -> None:
    response = caller.evaluate({**evaluate_body, "job_title": payload})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="job_title")
    assert not Evaluation.objects.filter(owner=caller.user).exists()


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_in_texts_are_stored_verbatim(
    caller: Caller, evaluate_body: dict, payload: str
) -> None:
    body = {
        **evaluate_body,
        "job_description": payload,
        "study_case_brief": payload,
        "scoring_rubric": payload,
    }
    response = caller.evaluate(body, **{"Idempotency-Key": payload})
    assert response.status_code == 202, response.content
    evaluation = Evaluation.objects.get(id=response.json()["id"])
    assert evaluation.job_description_override == payload
    assert evaluation.idempotency_key == payload
    # Nothing was dropped or rewritten.
    assert Token.objects.filter(key=caller.token, user=caller.user).exists()


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_in_the_result_path_are_not_found(
    caller: Caller, payload: str
) -> None:
    response = caller.client.get(f"/v1/result/{payload}")
    assert_envelope(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_as_file_names_are_harmless(
    caller: Caller, payload: str
) -> None:
    response = caller.upload_files(
        cv=(f"{payload}.txt", text_bytes()),
        project=("p.txt", text_bytes(PROJECT_TEXT)),
    )
    assert response.status_code == 201, response.content
    cv = Upload.objects.get(id=response.json()["cv_id"])
    assert "/" not in cv.original_filename
    assert payload not in cv.file.name


def test_a_huge_header_value_does_not_break_anything(
    caller: Caller, evaluate_body: dict
) -> None:
    response = caller.evaluate(
        evaluate_body, **{"X-Request-Id": "x" * 100_000, "Idempotency-Key": "ok"}
    )
    assert response.status_code == 202
    assert len(response["X-Request-Id"]) == 32  # replaced by a generated one
