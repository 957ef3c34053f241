"""Reads in the evaluation domain, shared by the API, the admin and the worker."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from evaluations.models import Evaluation, JobOpening, Upload


def _visible(queryset: QuerySet, user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    if getattr(user, "is_superuser", False):
        return queryset
    return queryset.filter(owner_id=user.pk)


def uploads_get_for_user(
    *, upload_ids: list[uuid.UUID], user: AbstractBaseUser | AnonymousUser
) -> dict[uuid.UUID, Upload]:
    """The user's uploads among `upload_ids`, by id (one query)."""
    uploads = _visible(Upload.objects.all(), user).filter(id__in=upload_ids)
    return {upload.id: upload for upload in uploads}


def evaluation_get_for_user(
    *, evaluation_id: uuid.UUID, user: AbstractBaseUser | AnonymousUser
) -> Evaluation | None:
    return _visible(Evaluation.objects.all(), user).filter(id=evaluation_id).first()


def evaluation_get_for_run(*, evaluation_id: uuid.UUID | str) -> Evaluation:
    return (
        Evaluation.objects.select_related("cv", "project", "opening")
        .prefetch_related("opening__criteria")
        .get(id=evaluation_id)
    )


def opening_get(*, title: str | None) -> JobOpening | None:
    """The opening with this title (case-insensitive), or the default one."""
    if title:
        return JobOpening.objects.filter(title__iexact=title.strip()).first()
    return JobOpening.objects.filter(is_default=True).first()
