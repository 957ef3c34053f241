"""POST /v1/evaluate: creating jobs, validation, ownership and idempotency."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evaluations.models import Evaluation, JobOpening, Upload
from tests.evaluations.api.conftest import Caller, assert_envelope
from tests.evaluations.factories import JobOpeningFactory, UploadFactory

pytestmark = pytest.mark.django_db


def test_evaluate_queues_a_job_for_the_default_opening(
    caller: Caller, evaluate_body: dict, uploads: tuple[Upload, Upload]
) -> None:
    response = caller.evaluate(evaluate_body)

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "status"}
    assert body["status"] == "queued"
    evaluation = Evaluation.objects.get(id=body["id"])
    assert evaluation.owner == caller.user
    assert (evaluation.cv, evaluation.project) == uploads
    assert evaluation.opening == JobOpening.objects.get(is_default=True)
    assert evaluation.idempotency_key is None


def test_evaluate_picks_the_opening_by_title_and_keeps_overrides(
    caller: Caller, evaluate_body: dict
) -> None:
    opening = JobOpeningFactory(title="Data Engineer")
    response = caller.evaluate(
        {
            **evaluate_body,
            "job_title": "data engineer",
            "job_description": "Build pipelines.",
            "study_case_brief": "Design an ETL.",
            "scoring_rubric": "Correctness above all.",
        }
    )
    assert response.status_code == 202, response.content
    evaluation = Evaluation.objects.get(id=response.json()["id"])
    assert evaluation.opening == opening
    assert evaluation.job_description_override == "Build pipelines."
    assert evaluation.study_case_brief_override == "Design an ETL."
    assert evaluation.scoring_rubric_override == "Correctness above all."


def test_bearer_scheme_works_too(db: None, evaluate_body: dict, caller: Caller) -> None:
    caller.client.credentials(HTTP_AUTHORIZATION=f"Bearer {caller.token}")
    assert caller.evaluate(evaluate_body).status_code == 202


def test_the_request_id_is_stored_on_the_job_and_echoed(
    caller: Caller, evaluate_body: dict
) -> None:
    response = caller.evaluate(evaluate_body, **{"X-Request-Id": "client-req-42"})
    assert response.status_code == 202
    assert response["X-Request-Id"] == "client-req-42"
    assert Evaluation.objects.get(id=response.json()["id"]).request_id == (
        "client-req-42"
    )


def test_a_request_id_is_generated_when_absent(
    caller: Caller, evaluate_body: dict
) -> None:
    response = caller.evaluate(evaluate_body)
    generated = response["X-Request-Id"]
    assert len(generated) == 32
    assert Evaluation.objects.get(id=response.json()["id"]).request_id == generated


@pytest.mark.parametrize("field", ["cv_id", "project_id"])
def test_a_missing_id_is_invalid(
    caller: Caller, evaluate_body: dict, field: str
) -> None:
    del evaluate_body[field]
    assert_envelope(
        caller.evaluate(evaluate_body), 400, "INVALID_ARGUMENT", field=field
    )


@pytest.mark.parametrize("value", ["not-a-uuid", "", "1234", "' OR 1=1--"])
def test_an_id_that_is_not_a_uuid_is_invalid(
    caller: Caller, evaluate_body: dict, value: str
) -> None:
    response = caller.evaluate({**evaluate_body, "cv_id": value})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv_id")


@pytest.mark.parametrize("field", ["cv_id", "project_id"])
def test_an_unknown_id_is_not_found(
    caller: Caller, evaluate_body: dict, field: str
) -> None:
    response = caller.evaluate(
        {**evaluate_body, field: "00000000-0000-4000-8000-000000000000"}
    )
    assert_envelope(response, 404, "NOT_FOUND", field=field)
    assert not Evaluation.objects.filter(owner=caller.user).exists()


def test_another_users_upload_is_not_found(
    caller: Caller, other_caller: Caller, evaluate_body: dict
) -> None:
    response = other_caller.evaluate(evaluate_body)
    assert_envelope(response, 404, "NOT_FOUND", field="cv_id")


def test_a_superuser_may_use_anyones_uploads(
    admin_caller: Caller, evaluate_body: dict
) -> None:
    assert admin_caller.evaluate(evaluate_body).status_code == 202


def test_ids_of_the_wrong_kind_are_invalid(
    caller: Caller, uploads: tuple[Upload, Upload]
) -> None:
    cv, project = uploads
    response = caller.evaluate({"cv_id": str(project.id), "project_id": str(cv.id)})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="cv_id")
    other_cv = UploadFactory(owner=caller.user, kind=Upload.Kind.CV)
    response = caller.evaluate({"cv_id": str(cv.id), "project_id": str(other_cv.id)})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="project_id")


def test_an_unknown_job_title_is_invalid(caller: Caller, evaluate_body: dict) -> None:
    response = caller.evaluate({**evaluate_body, "job_title": "Astronaut"})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="job_title")


@pytest.mark.parametrize(
    ("field", "limit"),
    [("job_description", 5000), ("study_case_brief", 5000), ("scoring_rubric", 10000)],
)
def test_override_texts_have_length_limits(
    caller: Caller, evaluate_body: dict, field: str, limit: int
) -> None:
    at_limit = caller.evaluate({**evaluate_body, field: "x" * limit})
    assert at_limit.status_code == 202, at_limit.content
    response = caller.evaluate({**evaluate_body, field: "x" * (limit + 1)})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field=field)


@pytest.mark.parametrize("value", [42, 4.2, True, None, ["a"], {"a": "b"}], ids=repr)
@pytest.mark.parametrize(
    "field",
    ["cv_id", "project_id", "job_title", "job_description", "study_case_brief"],
)
def test_wrong_json_types_are_invalid(
    caller: Caller, evaluate_body: dict, field: str, value: Any
) -> None:
    response = caller.evaluate({**evaluate_body, field: value})
    assert_envelope(response, 400, "INVALID_ARGUMENT", field=field)


@pytest.mark.parametrize("body", [[], ["cv_id"], "text", 42, None, True], ids=repr)
def test_a_body_that_is_not_an_object_is_invalid(caller: Caller, body: Any) -> None:
    response = caller.client.post(
        "/v1/evaluate",
        data=__import__("json").dumps(body),
        content_type="application/json",
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("field", "value"), [("job_description", "a\x00b"), ("job_title", "\ud800")]
)
def test_nul_and_lone_surrogates_in_text_are_invalid(
    caller: Caller, evaluate_body: dict, field: str, value: str
) -> None:
    # json.dumps escapes both as \u0000 and \ud800: valid JSON, unstorable text.
    body = json.dumps({**evaluate_body, field: value})
    response = caller.client.post(
        "/v1/evaluate", data=body, content_type="application/json"
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT", field=field)


# --- Idempotency ------------------------------------------------------------------


def test_the_same_key_and_body_return_the_same_job(
    caller: Caller, evaluate_body: dict
) -> None:
    first = caller.evaluate(evaluate_body, **{"Idempotency-Key": "order-1"})
    again = caller.evaluate(evaluate_body, **{"Idempotency-Key": "order-1"})

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Evaluation.objects.filter(owner=caller.user).count() == 1
    assert Evaluation.objects.get(owner=caller.user).idempotency_key == "order-1"


def test_a_replay_reports_the_current_status(
    caller: Caller, evaluate_body: dict
) -> None:
    first = caller.evaluate(evaluate_body, **{"Idempotency-Key": "k"})
    Evaluation.objects.filter(id=first.json()["id"]).update(status="processing")
    again = caller.evaluate(evaluate_body, **{"Idempotency-Key": "k"})
    assert again.json() == {"id": first.json()["id"], "status": "processing"}


def test_the_same_key_with_another_body_is_a_conflict(
    caller: Caller, evaluate_body: dict
) -> None:
    caller.evaluate(evaluate_body, **{"Idempotency-Key": "order-1"})
    response = caller.evaluate(
        {**evaluate_body, "job_description": "Something else."},
        **{"Idempotency-Key": "order-1"},
    )
    assert_envelope(response, 409, "CONFLICT")
    assert Evaluation.objects.filter(owner=caller.user).count() == 1


def test_keys_are_scoped_per_user(
    caller: Caller, admin_caller: Caller, evaluate_body: dict
) -> None:
    mine = caller.evaluate(evaluate_body, **{"Idempotency-Key": "shared"})
    theirs = admin_caller.evaluate(evaluate_body, **{"Idempotency-Key": "shared"})
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]


def test_different_keys_create_different_jobs(
    caller: Caller, evaluate_body: dict
) -> None:
    a = caller.evaluate(evaluate_body, **{"Idempotency-Key": "a"})
    b = caller.evaluate(evaluate_body, **{"Idempotency-Key": "b"})
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize(
    "key", ["x" * 256, "", "   ", "caf\u00e9", "tab\there", "new\x7fline"], ids=repr
)
def test_a_malformed_idempotency_key_is_invalid(
    caller: Caller, evaluate_body: dict, key: str
) -> None:
    response = caller.client.post(
        "/v1/evaluate", evaluate_body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert_envelope(response, 400, "INVALID_ARGUMENT", field="Idempotency-Key")
    assert not Evaluation.objects.filter(owner=caller.user).exists()


def test_a_key_of_255_printable_characters_is_accepted(
    caller: Caller, evaluate_body: dict
) -> None:
    key = ("abc-DEF_123 ~!" * 20)[:255]
    response = caller.evaluate(evaluate_body, **{"Idempotency-Key": key})
    assert response.status_code == 202, response.content
