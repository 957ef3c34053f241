"""The reviewer's admin: permissions, evaluating from the browser, re-runs,
documents, and editing openings with their rubrics."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from evaluations.exceptions import ServiceError
from evaluations.models import Evaluation, JobOpening, Upload
from evaluations.services import rubric_weight_errors, upload_pair_create
from tests.evaluations.factories import (
    EvaluationFactory,
    JobOpeningFactory,
    RubricCriterionFactory,
    UploadFactory,
    UserFactory,
)
from tests.evaluations.test_admin import completed_evaluation, failed_evaluation

pytestmark = pytest.mark.django_db

CV_TEXT = (
    "Jane Doe, backend engineer. Six years of Python, Django and PostgreSQL; "
    "built a Kafka job queue handling 2 million events a day."
)
PROJECT_TEXT = (
    "Project report: an API with asynchronous evaluation jobs, retries with "
    "backoff, tests and a README explaining the design."
)


def text_file(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def staff_client(*permissions: str) -> Client:
    user = UserFactory(is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def evaluate_url() -> str:
    return reverse("admin:evaluations_evaluation_evaluate")


def change_url(evaluation: Evaluation) -> str:
    return reverse("admin:evaluations_evaluation_change", args=[evaluation.pk])


# --- Permissions ----------------------------------------------------------------


def test_staff_without_permissions_sees_and_changes_nothing() -> None:
    evaluation = failed_evaluation()
    client = staff_client()
    refused = [
        reverse("admin:evaluations_evaluation_changelist"),
        change_url(evaluation),
        evaluate_url(),
        reverse("admin:evaluations_upload_download", args=[evaluation.cv_id]),
        reverse("admin:evaluations_upload_text", args=[evaluation.cv_id]),
        reverse("admin:evaluations_upload_changelist"),
    ]
    for url in refused:
        assert client.get(url).status_code == 403, url
    rerun = reverse("admin:evaluations_evaluation_rerun", args=[evaluation.pk])
    assert client.post(rerun).status_code == 403
    action = client.post(
        reverse("admin:evaluations_evaluation_changelist"),
        {"action": "rerun_failed", "_selected_action": [str(evaluation.pk)]},
    )
    assert action.status_code == 403
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.FAILED

    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert b'class="evaluation-dashboard"' not in index.content
    assert reverse("admin:evaluations_evaluation_changelist").encode() not in (
        index.content
    )


def test_viewer_can_read_but_not_evaluate_rerun_or_download() -> None:
    evaluation = failed_evaluation()
    client = staff_client("evaluations.view_evaluation")

    changelist = client.get(reverse("admin:evaluations_evaluation_changelist"))
    assert changelist.status_code == 200
    assert b"Evaluate a candidate" not in changelist.content
    assert b"rerun_failed" not in changelist.content

    page = client.get(change_url(evaluation))
    assert page.status_code == 200
    assert b"Re-run this job" not in page.content
    assert b"View extracted text" not in page.content
    assert evaluation.cv.original_filename.encode() in page.content

    assert client.get(evaluate_url()).status_code == 403
    download = reverse("admin:evaluations_upload_download", args=[evaluation.cv_id])
    assert client.get(download).status_code == 403
    rerun = reverse("admin:evaluations_evaluation_rerun", args=[evaluation.pk])
    assert client.post(rerun).status_code == 403


def test_documents_need_the_upload_view_permission() -> None:
    evaluation = completed_evaluation()
    client = staff_client("evaluations.view_evaluation", "evaluations.view_upload")
    page = client.get(change_url(evaluation))
    assert b"View extracted text" in page.content
    download = reverse("admin:evaluations_upload_download", args=[evaluation.cv_id])
    assert client.get(download).status_code == 200


def test_evaluating_needs_add_and_view_permissions() -> None:
    assert staff_client("evaluations.add_evaluation").get(
        evaluate_url()
    ).status_code == (403)
    client = staff_client("evaluations.add_evaluation", "evaluations.view_evaluation")
    assert client.get(evaluate_url()).status_code == 200
    changelist = client.get(reverse("admin:evaluations_evaluation_changelist"))
    assert b"Evaluate a candidate" in changelist.content


# --- Evaluating a candidate ---------------------------------------------------------


def test_evaluate_page_preselects_the_default_opening(admin_client: Client) -> None:
    JobOpeningFactory(title="Data Engineer")
    form = admin_client.get(evaluate_url()).context["form"]
    default = JobOpening.objects.get(is_default=True)
    assert form["opening"].value() == default.pk
    assert form.fields["cv"].help_text == "PDF, DOCX or plain text, up to 10 MB."


def test_evaluate_queues_a_job_and_lands_on_its_page(admin_client: Client) -> None:
    response = admin_client.post(
        evaluate_url(),
        {
            "cv": text_file("jane-doe.txt", CV_TEXT),
            "project": text_file("report.txt", PROJECT_TEXT),
            "opening": JobOpening.objects.get(is_default=True).pk,
            "job_description": "Backend engineer for the payments team.",
        },
    )
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(evaluation)
    assert evaluation.status == Evaluation.Status.QUEUED
    assert evaluation.cv.original_filename == "jane-doe.txt"
    assert evaluation.cv.kind == Upload.Kind.CV
    assert evaluation.project.kind == Upload.Kind.PROJECT
    assert evaluation.job_description_override == (
        "Backend engineer for the payments team."
    )
    assert evaluation.owner.is_superuser

    page = admin_client.get(response["Location"])
    assert b'<meta http-equiv="refresh" content="2">' in page.content
    assert b"The evaluation is queued" in page.content


def test_evaluate_against_another_opening(admin_client: Client) -> None:
    opening = JobOpeningFactory(title="Data Engineer")
    RubricCriterionFactory(opening=opening, group="cv", weight=Decimal(1))
    RubricCriterionFactory(opening=opening, group="project", weight=Decimal(1))
    admin_client.post(
        evaluate_url(),
        {
            "cv": text_file("cv.txt", CV_TEXT),
            "project": text_file("project.txt", PROJECT_TEXT),
            "opening": opening.pk,
        },
    )
    assert Evaluation.objects.get().opening == opening


def service_message(kind: str, name: str, data: bytes, max_bytes: int) -> str:
    """What the upload service (and so `POST /v1/upload`) says about this file."""
    files = {
        "cv": text_file("cv.txt", CV_TEXT),
        "project": text_file("project.txt", PROJECT_TEXT),
        kind: SimpleUploadedFile(name, data),
    }
    with pytest.raises(ServiceError) as error:
        upload_pair_create(owner=UserFactory(), max_bytes=max_bytes, **files)
    assert error.value.field == kind
    return error.value.message


def test_upload_errors_use_the_api_wording_and_keep_nothing(
    admin_client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    fake_pdf = b"MZ\x90\x00\x03 this is a program, not a PDF"
    expected = service_message("project", "report.pdf", fake_pdf, 10 * 1024 * 1024)

    response = admin_client.post(
        evaluate_url(),
        {
            "cv": text_file("cv.txt", CV_TEXT),
            "project": SimpleUploadedFile("report.pdf", fake_pdf),
            "opening": JobOpening.objects.get(is_default=True).pk,
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["project"] == [expected]
    assert "cv" not in form.errors
    assert expected in response.content.decode()
    assert not Upload.objects.exists()
    assert not Evaluation.objects.exists()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_files_over_the_upload_limit_are_refused(
    admin_client: Client, settings: Any
) -> None:
    settings.MAX_UPLOAD_MB = 1
    too_big = "x" * (1024 * 1024 + 1)
    expected = service_message("cv", "cv.txt", too_big.encode(), 1024 * 1024)
    response = admin_client.post(
        evaluate_url(),
        {
            "cv": text_file("cv.txt", too_big),
            "project": text_file("project.txt", PROJECT_TEXT),
            "opening": JobOpening.objects.get(is_default=True).pk,
        },
    )
    assert response.context["form"].errors == {"cv": [expected]}
    assert expected == "The cv file is larger than 1 MB."


def test_empty_and_missing_files(admin_client: Client) -> None:
    expected = service_message("cv", "cv.txt", b"", 10 * 1024 * 1024)
    response = admin_client.post(
        evaluate_url(),
        {
            "cv": SimpleUploadedFile("cv.txt", b""),
            "project": text_file("project.txt", PROJECT_TEXT),
            "opening": JobOpening.objects.get(is_default=True).pk,
        },
    )
    assert response.context["form"].errors == {"cv": [expected]}
    missing = admin_client.post(evaluate_url(), {"cv": text_file("cv.txt", CV_TEXT)})
    assert missing.context["form"].errors["project"] == ["This field is required."]
    assert not Upload.objects.exists()


def test_override_limits_come_from_the_service(
    admin_client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    response = admin_client.post(
        evaluate_url(),
        {
            "cv": text_file("cv.txt", CV_TEXT),
            "project": text_file("project.txt", PROJECT_TEXT),
            "opening": JobOpening.objects.get(is_default=True).pk,
            "scoring_rubric": "r" * 10_001,
        },
    )
    assert response.context["form"].errors == {
        "scoring_rubric": ["scoring_rubric is longer than 10000 characters."]
    }
    # The documents were stored before the evaluation was refused: both the
    # rows and the files are gone again.
    assert not Upload.objects.exists()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


# --- An evaluation's page -----------------------------------------------------------


def test_completed_page_shows_the_breakdown_provenance_and_timings(
    admin_client: Client,
) -> None:
    evaluation = completed_evaluation()
    page = admin_client.get(change_url(evaluation)).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert page.count('<tr class="criterion">') == 9
    assert "Clear evidence for technical skills match." in page
    assert "CV match rate: <strong>0.80</strong>" in page
    assert "Project score: <strong>8.0 / 10</strong>" in page
    for text in (
        "offline-heuristics",
        "2026-12-01.1",
        "postgres_fts",
        "1500 (1200 prompt, 300 completion)",
        "Retrieval",
        "95 ms",
        "2.0 s",  # processing time
        evaluation.cv_feedback,
        evaluation.project_feedback,
        evaluation.overall_summary,
    ):
        assert text in page, text


def test_failed_page_shows_the_error_and_a_rerun_button(admin_client: Client) -> None:
    evaluation = failed_evaluation()
    page = admin_client.get(change_url(evaluation)).content.decode()
    assert "llm_unavailable" in page
    assert "The language model provider was unavailable." in page
    assert "Re-run this job" in page
    assert 'http-equiv="refresh"' not in page


def test_change_page_is_read_only(admin_client: Client) -> None:
    evaluation = EvaluationFactory(status=Evaluation.Status.PROCESSING)
    page = admin_client.get(change_url(evaluation))
    assert b'name="_save"' not in page.content
    assert b"Delete" not in page.content
    response = admin_client.post(change_url(evaluation), {"status": "completed"})
    assert response.status_code == 403
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.PROCESSING


def test_extracted_text_is_escaped(admin_client: Client) -> None:
    upload = UploadFactory(text="<script>alert('x')</script> & more")
    page = admin_client.get(reverse("admin:evaluations_upload_text", args=[upload.pk]))
    assert b"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in (
        page.content
    )
    assert b"<script>alert" not in page.content


def test_download_streams_the_original_file(admin_client: Client) -> None:
    upload = UploadFactory(original_filename="Jane Doe CV.txt", text="hello")
    response = admin_client.get(
        reverse("admin:evaluations_upload_download", args=[upload.pk])
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Jane Doe CV.txt"'
    assert response["Content-Type"] == "text/plain"
    assert b"".join(response.streaming_content) == b"hello"


def test_download_of_a_missing_file_is_not_found(admin_client: Client) -> None:
    upload = UploadFactory()
    upload.file.delete(save=False)
    response = admin_client.get(
        reverse("admin:evaluations_upload_download", args=[upload.pk])
    )
    assert response.status_code == 404


# --- Re-running and deleting jobs -----------------------------------------------------


def test_rerun_action_only_changes_failed_jobs(admin_client: Client) -> None:
    failed = [failed_evaluation(), failed_evaluation()]
    completed = completed_evaluation()
    response = admin_client.post(
        reverse("admin:evaluations_evaluation_changelist"),
        {
            "action": "rerun_failed",
            "_selected_action": [str(e.pk) for e in [*failed, completed]],
        },
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "2 failed jobs were queued to run again. 1 selected job had not failed and "
        "was left unchanged."
    ]
    for evaluation in failed:
        evaluation.refresh_from_db()
        assert evaluation.status == Evaluation.Status.QUEUED
        assert evaluation.error_code == ""
    completed.refresh_from_db()
    assert completed.status == Evaluation.Status.COMPLETED


def test_rerun_action_with_no_failed_job(admin_client: Client) -> None:
    completed = completed_evaluation()
    response = admin_client.post(
        reverse("admin:evaluations_evaluation_changelist"),
        {"action": "rerun_failed", "_selected_action": [str(completed.pk)]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["None of the selected jobs had failed; nothing was re-run."]


def test_rerun_button(admin_client: Client) -> None:
    evaluation = failed_evaluation()
    url = reverse("admin:evaluations_evaluation_rerun", args=[evaluation.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response["Location"] == change_url(evaluation)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.QUEUED
    # A second click finds nothing to re-run and says so.
    again = admin_client.post(url, follow=True)
    assert "Only failed jobs can be re-run" in again.content.decode()


def test_only_finished_jobs_can_be_deleted(admin_client: Client) -> None:
    running = EvaluationFactory(status=Evaluation.Status.PROCESSING)
    done = completed_evaluation()
    delete = "admin:evaluations_evaluation_delete"
    assert admin_client.get(reverse(delete, args=[running.pk])).status_code == 403
    assert admin_client.post(reverse(delete, args=[done.pk]), {"post": "yes"})[
        "Location"
    ] == reverse("admin:evaluations_evaluation_changelist")
    assert not Evaluation.objects.filter(pk=done.pk).exists()

    # The bulk action refuses a selection with a running job in it.
    queued = EvaluationFactory(status=Evaluation.Status.QUEUED)
    failed = failed_evaluation()
    admin_client.post(
        reverse("admin:evaluations_evaluation_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [str(queued.pk), str(failed.pk)],
            "post": "yes",
        },
    )
    assert Evaluation.objects.filter(pk__in=[queued.pk, failed.pk]).count() == 2


def test_rerun_failed_evaluations_command() -> None:
    jobs = [failed_evaluation() for _ in range(3)]
    out = StringIO()
    call_command("rerun_failed_evaluations", "--limit", "2", stdout=out)
    assert out.getvalue().strip() == "2 failed evaluation(s) queued to run again."
    statuses = sorted(
        Evaluation.objects.filter(pk__in=[j.pk for j in jobs]).values_list(
            "status", flat=True
        )
    )
    assert statuses == ["failed", "queued", "queued"]
    with pytest.raises(CommandError):
        call_command("rerun_failed_evaluations", "--limit", "0")


# --- Job openings and their rubrics ----------------------------------------------


def post_data(response: Any) -> dict[str, Any]:
    """The admin form on `response` as the browser would submit it unchanged."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


def opening_url(opening: JobOpening) -> str:
    return reverse("admin:evaluations_jobopening_change", args=[opening.pk])


def criterion_index(data: dict[str, Any], key: str) -> int:
    return next(
        int(name.split("-")[1])
        for name, value in data.items()
        if name.startswith("criteria-") and name.endswith("-key") and value == key
    )


def test_opening_rubric_weights_must_sum_to_one(admin_client: Client) -> None:
    opening = JobOpening.objects.get(is_default=True)
    data = post_data(admin_client.get(opening_url(opening)))
    data[f"criteria-{criterion_index(data, 'technical_skills')}-weight"] = "0.5"

    response = admin_client.post(opening_url(opening), data)
    assert response.status_code == 200
    expected = rubric_weight_errors({"cv": [Decimal("0.5"), Decimal("0.6")]})
    assert expected == ["The cv criteria weights sum to 1.1; they must sum to 1."]
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert list(errors) == expected
    assert expected[0] in response.content.decode()
    assert opening.criteria.get(key="technical_skills").weight == Decimal("0.400")


def test_deleted_criteria_do_not_count(admin_client: Client) -> None:
    opening = JobOpening.objects.get(is_default=True)
    data = post_data(admin_client.get(opening_url(opening)))
    data[f"criteria-{criterion_index(data, 'creativity')}-DELETE"] = "on"
    response = admin_client.post(opening_url(opening), data)
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert list(errors) == [
        "The project criteria weights sum to 0.9; they must sum to 1."
    ]

    # Moving the weight to another criterion makes it valid again.
    data[f"criteria-{criterion_index(data, 'correctness')}-weight"] = "0.400"
    response = admin_client.post(opening_url(opening), data)
    assert response.status_code == 302
    assert not opening.criteria.filter(key="creativity").exists()
    assert opening.criteria.get(key="correctness").weight == Decimal("0.400")


def test_each_group_needs_a_criterion(admin_client: Client) -> None:
    opening = JobOpening.objects.get(is_default=True)
    data = post_data(admin_client.get(opening_url(opening)))
    for key in ("technical_skills", "experience_level", "relevant_achievements"):
        data[f"criteria-{criterion_index(data, key)}-DELETE"] = "on"
    data[f"criteria-{criterion_index(data, 'cultural_fit')}-DELETE"] = "on"
    response = admin_client.post(opening_url(opening), data)
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert list(errors) == ["Add at least one CV criterion."]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weight", "0", "Ensure this value is greater than or equal to 0.001."),
        ("weight", "1.5", "Ensure this value is less than or equal to 1."),
        (
            "key",
            "experience_level",
            "Please correct the duplicate data for group and key",
        ),
    ],
)
def test_invalid_criteria_are_form_errors(
    admin_client: Client, field: str, value: str, message: str
) -> None:
    opening = JobOpening.objects.get(is_default=True)
    data = post_data(admin_client.get(opening_url(opening)))
    data[f"criteria-{criterion_index(data, 'technical_skills')}-{field}"] = value
    response = admin_client.post(opening_url(opening), data)
    assert response.status_code == 200
    assert message in response.content.decode()


def new_opening_data(**extra: str) -> dict[str, str]:
    return {
        "title": "Data Engineer",
        "slug": "data-engineer",
        "job_description": "Pipelines in Python and SQL.",
        "study_case_brief": "Build a small ETL.",
        "criteria-TOTAL_FORMS": "2",
        "criteria-INITIAL_FORMS": "0",
        "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
        "criteria-0-group": "cv",
        "criteria-0-key": "skills",
        "criteria-0-name": "Skills",
        "criteria-0-weight": "1",
        "criteria-0-position": "0",
        "criteria-1-group": "project",
        "criteria-1-key": "correctness",
        "criteria-1-name": "Correctness",
        "criteria-1-weight": "1",
        "criteria-1-position": "0",
        **extra,
    }


def test_making_an_opening_default_unmarks_the_old_one(admin_client: Client) -> None:
    old = JobOpening.objects.get(is_default=True)
    response = admin_client.post(
        reverse("admin:evaluations_jobopening_add"),
        new_opening_data(make_default="on"),
    )
    assert response.status_code == 302
    new = JobOpening.objects.get(slug="data-engineer")
    assert new.is_default
    old.refresh_from_db()
    assert not old.is_default
    assert JobOpening.objects.filter(is_default=True).count() == 1

    changelist = admin_client.get(reverse("admin:evaluations_jobopening_changelist"))
    assert changelist.content.decode().count('class="badge badge-default"') == 1
    assert changelist.context["cl"].result_list[0] == new


def test_a_new_opening_is_not_default_unless_asked(admin_client: Client) -> None:
    admin_client.post(reverse("admin:evaluations_jobopening_add"), new_opening_data())
    assert not JobOpening.objects.get(slug="data-engineer").is_default
    assert JobOpening.objects.filter(is_default=True).count() == 1


def test_the_default_opening_stays_until_another_takes_over(
    admin_client: Client,
) -> None:
    opening = JobOpening.objects.get(is_default=True)
    data = post_data(admin_client.get(opening_url(opening)))
    del data["make_default"]
    response = admin_client.post(opening_url(opening), data)
    assert response.context["adminform"].form.errors["make_default"] == [
        "There must be a default opening: make another opening the default instead."
    ]
    delete = reverse("admin:evaluations_jobopening_delete", args=[opening.pk])
    assert admin_client.get(delete).status_code == 403
    other = JobOpeningFactory()
    delete = reverse("admin:evaluations_jobopening_delete", args=[other.pk])
    assert admin_client.get(delete).status_code == 200
