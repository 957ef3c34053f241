"""Retention: `retention_purge` and `purge_old_data`, with real files on disk."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import cast

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from evaluations.models import Evaluation, Upload
from evaluations.retention import retention_purge
from tests.evaluations.factories import EvaluationFactory, UploadFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def age(instance: Evaluation | Upload, days: float, **extra: datetime) -> None:
    """Backdate a row (auto_now_add ignores values given at creation)."""
    moment = NOW - timedelta(days=days)
    fields = {"created_at": moment, **extra}
    type(instance).objects.filter(pk=instance.pk).update(**fields)


def old_evaluation(status: str, days: float = 40, **kwargs: object) -> Evaluation:
    finished = (
        {"finished_at": NOW - timedelta(days=days)}
        if status in Evaluation.TERMINAL_STATUSES
        else {}
    )
    error = {"error_code": "llm_unavailable"} if status == "failed" else {}
    scores = (
        {"cv_match_rate": "0.5", "project_score": "5"} if status == "completed" else {}
    )
    evaluation = cast(
        Evaluation, EvaluationFactory(status=status, **error, **scores, **kwargs)
    )
    age(evaluation, days, **finished)
    age(evaluation.cv, days)
    age(evaluation.project, days)
    return evaluation


def stored_path(upload: Upload, media_root: Path) -> Path:
    return media_root / str(upload.file.name)


@pytest.fixture
def data(media_root: Path) -> dict[str, object]:
    """Old and new jobs and uploads, in every state that matters."""
    owner = UserFactory()
    old_completed = old_evaluation("completed", owner=owner)
    old_failed = old_evaluation("failed", owner=owner)
    old_queued = old_evaluation("queued", owner=owner)
    old_processing = old_evaluation("processing", owner=owner)
    recent = old_evaluation("completed", days=2, owner=owner)
    # Created long ago but re-run and finished yesterday: still in use.
    rerun = old_evaluation("completed", owner=owner)
    Evaluation.objects.filter(pk=rerun.pk).update(finished_at=NOW - timedelta(days=1))
    # An old CV that a recent evaluation still uses.
    shared_cv = old_evaluation("completed", owner=owner).cv
    uses_old_cv = EvaluationFactory(
        status="completed",
        cv_match_rate="0.5",
        project_score="5",
        owner=owner,
        cv=shared_cv,
    )
    orphan_old = cast(Upload, UploadFactory(owner=owner))
    age(orphan_old, 60)
    orphan_new = UploadFactory(owner=owner)
    return {
        "old_completed": old_completed,
        "old_failed": old_failed,
        "old_queued": old_queued,
        "old_processing": old_processing,
        "recent": recent,
        "rerun": rerun,
        "shared_cv": shared_cv,
        "uses_old_cv": uses_old_cv,
        "orphan_old": orphan_old,
        "orphan_new": orphan_new,
    }


def test_purge_deletes_finished_old_jobs_then_unused_old_uploads_and_files(
    data: dict[str, object], media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    old_completed = data["old_completed"]
    old_failed = data["old_failed"]
    orphan_old = data["orphan_old"]
    assert isinstance(old_completed, Evaluation) and isinstance(old_failed, Evaluation)
    assert isinstance(orphan_old, Upload)
    doomed_uploads = [
        old_completed.cv,
        old_completed.project,
        old_failed.cv,
        old_failed.project,
        orphan_old,
    ]
    doomed_files = [stored_path(upload, media_root) for upload in doomed_uploads]
    assert all(path.is_file() for path in doomed_files)
    evaluations_before = Evaluation.objects.count()
    uploads_before = Upload.objects.count()

    # The shared CV's own old evaluation goes; the CV stays for uses_old_cv.
    # Files are deleted once each batch's transaction commits.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = retention_purge(days=30, batch_size=2, now=NOW)
    assert len(callbacks) == 3  # 6 uploads in batches of 2

    assert (report.evaluations, report.uploads, report.files) == (3, 6, 6)
    assert not report.dry_run
    assert Evaluation.objects.count() == evaluations_before - 3
    assert Upload.objects.count() == uploads_before - 6
    assert not Evaluation.objects.filter(
        pk__in=[old_completed.pk, old_failed.pk]
    ).exists()
    assert not Upload.objects.filter(pk__in=[u.pk for u in doomed_uploads]).exists()
    assert not any(path.exists() for path in doomed_files)

    kept = ["old_queued", "old_processing", "recent", "rerun", "uses_old_cv"]
    for name in kept:
        evaluation = data[name]
        assert isinstance(evaluation, Evaluation)
        assert Evaluation.objects.filter(pk=evaluation.pk).exists(), name
        for upload in (evaluation.cv, evaluation.project):
            assert Upload.objects.filter(pk=upload.pk).exists(), name
            assert stored_path(upload, media_root).is_file(), name
    orphan_new = data["orphan_new"]
    assert isinstance(orphan_new, Upload)
    assert Upload.objects.filter(pk=orphan_new.pk).exists()

    # Nothing left to do: a second run deletes nothing.
    again = retention_purge(days=30, now=NOW)
    assert (again.evaluations, again.uploads, again.files) == (0, 0, 0)


def test_dry_run_counts_exactly_what_a_purge_deletes(
    data: dict[str, object], media_root: Path
) -> None:
    files_before = sorted(media_root.rglob("*"))
    counts = (Evaluation.objects.count(), Upload.objects.count())

    dry = retention_purge(days=30, dry_run=True, now=NOW)

    assert dry.dry_run
    assert (Evaluation.objects.count(), Upload.objects.count()) == counts
    assert sorted(media_root.rglob("*")) == files_before
    real = retention_purge(days=30, now=NOW)
    assert (dry.evaluations, dry.uploads, dry.files) == (
        real.evaluations,
        real.uploads,
        real.files,
    )


def test_a_missing_file_does_not_stop_the_purge(
    media_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    evaluation = old_evaluation("completed")
    stored_path(evaluation.cv, media_root).unlink()
    with django_capture_on_commit_callbacks(execute=True):
        report = retention_purge(days=30, now=NOW)
    assert (report.evaluations, report.uploads) == (1, 2)
    assert not Upload.objects.filter(pk=evaluation.project.pk).exists()
    assert not stored_path(evaluation.project, media_root).exists()


@pytest.mark.parametrize(("days", "batch_size"), [(0, 10), (-1, 10), (30, 0)])
def test_purge_refuses_meaningless_arguments(days: int, batch_size: int) -> None:
    with pytest.raises(ValueError):
        retention_purge(days=days, batch_size=batch_size)


# --- The command ----------------------------------------------------------------------


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("purge_old_data", *args, stdout=out)
    return out.getvalue()


def test_command_dry_run_prints_counts_and_deletes_nothing(
    data: dict[str, object],
) -> None:
    counts = (Evaluation.objects.count(), Upload.objects.count())
    output = run_command("--days", "30", "--dry-run")
    assert output.startswith("Would delete 3 evaluation(s), 6 upload(s) and 6 stored")
    assert "older than 30 day(s)" in output
    assert (Evaluation.objects.count(), Upload.objects.count()) == counts


def test_command_defaults_to_retention_days(data: dict[str, object], settings) -> None:  # type: ignore[no-untyped-def]
    settings.RETENTION_DAYS = 30
    output = run_command("--batch-size", "1")
    assert output.startswith("Deleted 3 evaluation(s), 6 upload(s) and 6 stored")


def test_command_keeps_everything_when_retention_is_off(
    data: dict[str, object], settings
) -> None:  # type: ignore[no-untyped-def]
    settings.RETENTION_DAYS = 0
    counts = (Evaluation.objects.count(), Upload.objects.count())
    output = run_command()
    assert "kept forever" in output
    assert (Evaluation.objects.count(), Upload.objects.count()) == counts


@pytest.mark.parametrize(
    "args", [("--days", "-3"), ("--days", "5", "--batch-size", "0")]
)
def test_command_rejects_bad_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        run_command(*args)
