"""The evaluation domain's data: uploads, job openings with rubrics, and jobs.

Invariants live in the database (`Meta.constraints`) so that no code path can
break them; workflows live in `services.py`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Upload(models.Model):
    class Kind(models.TextChoices):
        CV = "cv", "CV"
        PROJECT = "project", "Project report"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=128)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to="uploads/%Y/%m/%d/", max_length=255)
    text = models.TextField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["cv", "project"]), name="upload_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_filename}"


class JobOpening(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    job_description = models.TextField()
    study_case_brief = models.TextField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="only_one_default_opening",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class RubricCriterion(models.Model):
    class Group(models.TextChoices):
        CV = "cv", "CV"
        PROJECT = "project", "Project"

    opening = models.ForeignKey(
        JobOpening, on_delete=models.CASCADE, related_name="criteria"
    )
    group = models.CharField(max_length=16, choices=Group.choices)
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    weight = models.DecimalField(max_digits=4, decimal_places=3)
    guide = models.TextField(
        blank=True, help_text="How to score 1 to 5 against this criterion."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["opening", "group", "position", "key"]
        verbose_name_plural = "rubric criteria"
        constraints = [
            models.UniqueConstraint(
                fields=["opening", "group", "key"], name="criterion_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(group__in=["cv", "project"]), name="criterion_group_valid"
            ),
            models.CheckConstraint(
                condition=Q(weight__gt=0) & Q(weight__lte=1),
                name="criterion_weight_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.weight})"


class Evaluation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="evaluations"
    )
    cv = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="+")
    opening = models.ForeignKey(
        JobOpening, on_delete=models.PROTECT, related_name="evaluations"
    )
    job_description_override = models.TextField(blank=True)
    study_case_brief_override = models.TextField(blank=True)
    scoring_rubric_override = models.TextField(blank=True)

    # NULL, not "", for "no key": the unique constraint must ignore keyless jobs.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    # Set by each claim; only the holder of the latest claim may finish the job.
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    cv_match_rate = models.DecimalField(
        max_digits=3, decimal_places=2, null=True, blank=True
    )
    cv_feedback = models.TextField(blank=True)
    project_score = models.DecimalField(
        max_digits=3, decimal_places=1, null=True, blank=True
    )
    project_feedback = models.TextField(blank=True)
    overall_summary = models.TextField(blank=True)
    breakdown = models.JSONField(default=dict, blank=True)
    provenance = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "processing", "completed", "failed"]),
                name="evaluation_status_valid",
            ),
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="evaluation_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(cv_match_rate__isnull=True)
                | (Q(cv_match_rate__gte=0) & Q(cv_match_rate__lte=1)),
                name="evaluation_cv_match_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(project_score__isnull=True)
                | (Q(project_score__gte=1) & Q(project_score__lte=10)),
                name="evaluation_project_score_range",
            ),
            models.CheckConstraint(
                condition=~Q(status="completed")
                | (Q(cv_match_rate__isnull=False) & Q(project_score__isnull=False)),
                name="evaluation_completed_has_scores",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(error_code=""),
                name="evaluation_failed_has_error_code",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="queued"),
                name="evaluation_queued_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Evaluation {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES
