"""Data retention: deleting old evaluations, uploads and their stored files.

An evaluation is purged once it is finished (completed or failed) and both its
creation and its finish are older than the cut-off; jobs still queued or
processing are never touched. An upload is purged once it is older than the
cut-off and no remaining evaluation refers to it. Rows go in batches, each in
its own transaction with the batch's rows locked; stored files are deleted
after that transaction commits, so a rolled-back batch never loses a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from evaluations.models import Evaluation, Upload

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    evaluations: int
    uploads: int
    files: int
    dry_run: bool


def _purgeable_evaluations(cutoff: datetime) -> QuerySet[Evaluation]:
    return Evaluation.objects.filter(
        Q(finished_at__isnull=True) | Q(finished_at__lt=cutoff),
        status__in=Evaluation.TERMINAL_STATUSES,
        created_at__lt=cutoff,
    )


def _purgeable_uploads(cutoff: datetime, *, dry_run: bool) -> QuerySet[Upload]:
    """Old uploads that no evaluation outliving this purge refers to.

    A real run deletes uploads after the old evaluations are gone, so every
    evaluation still there counts, including any another purge has locked but
    not yet deleted (its uploads are still protected). A dry run deleted
    nothing, so it leaves out the evaluations the real run would delete.
    """
    remaining = (
        Evaluation.objects.exclude(id__in=_purgeable_evaluations(cutoff).values("id"))
        if dry_run
        else Evaluation.objects.all()
    )
    return Upload.objects.filter(created_at__lt=cutoff).filter(
        ~Exists(remaining.filter(cv_id=OuterRef("pk"))),
        ~Exists(remaining.filter(project_id=OuterRef("pk"))),
    )


def _delete_files(names: list[str]) -> None:
    storage = Upload._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError as exc:
            # The row is gone; a file left behind is only disk space.
            logger.warning("could not delete stored upload %s: %s", name, exc)


def _purge_evaluation_batch(cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """(rows selected, rows deleted) for one batch."""
    with transaction.atomic():
        ids = list(
            _purgeable_evaluations(cutoff)
            .select_for_update(skip_locked=True)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return 0, 0
        # The status guard again: a row re-run since it was read is kept.
        _, per_model = Evaluation.objects.filter(
            id__in=ids, status__in=Evaluation.TERMINAL_STATUSES
        ).delete()
    return len(ids), per_model.get(Evaluation._meta.label, 0)


def _purge_upload_batch(cutoff: datetime, batch_size: int) -> tuple[int, int]:
    with transaction.atomic():
        rows = list(
            _purgeable_uploads(cutoff, dry_run=False)
            .select_for_update(skip_locked=True)
            .order_by("created_at")
            .values_list("id", "file")[:batch_size]
        )
        if not rows:
            return 0, 0
        Upload.objects.filter(id__in=[upload_id for upload_id, _ in rows]).delete()
        names = [name for _, name in rows if name]
        transaction.on_commit(lambda: _delete_files(names))
    return len(rows), len(names)


def retention_purge(
    *,
    days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Delete (or, with `dry_run`, count) what is older than `days` days."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=days)

    if dry_run:
        purgeable_uploads = _purgeable_uploads(cutoff, dry_run=True)
        return PurgeReport(
            cutoff=cutoff,
            evaluations=_purgeable_evaluations(cutoff).count(),
            uploads=purgeable_uploads.count(),
            files=purgeable_uploads.exclude(file="").count(),
            dry_run=True,
        )

    evaluations = 0
    while True:
        selected, deleted = _purge_evaluation_batch(cutoff, batch_size)
        if not selected:
            break
        evaluations += deleted
    uploads = files = 0
    while True:
        deleted, deleted_files = _purge_upload_batch(cutoff, batch_size)
        if not deleted:
            break
        uploads += deleted
        files += deleted_files
    logger.info(
        "retention purge before %s: %d evaluation(s), %d upload(s), %d file(s)",
        cutoff.isoformat(),
        evaluations,
        uploads,
        files,
    )
    return PurgeReport(
        cutoff=cutoff,
        evaluations=evaluations,
        uploads=uploads,
        files=files,
        dry_run=False,
    )
