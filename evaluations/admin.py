"""Admin screens: review evaluations, re-run failed ones, edit openings and rubrics.

Evaluations are read-only here: results and statuses are written by the
worker through the status machine, and the only way to change a job is a
service (`evaluation_rerun`), so an admin page can never corrupt a job's state.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from evaluations import admin_views
from evaluations.forms import (
    JobOpeningForm,
    RubricCriterionForm,
    RubricCriterionFormSet,
)
from evaluations.models import Evaluation, JobOpening, RubricCriterion, Upload
from evaluations.pipeline import scoring
from evaluations.services import evaluation_rerun, opening_set_default
from evaluations.templatetags.dashboard import format_duration

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec

admin.site.site_header = "CV Evaluator administration"
admin.site.site_title = "CV Evaluator admin"
admin.site.index_title = "Overview"

AUTO_REFRESH_SECONDS = 2
STEP_LABELS = {
    "retrieval": "Retrieval",
    "cv": "CV step",
    "project": "Project step",
    "summary": "Summary step",
    "total": "Total",
}


def status_badge(status: str, label: str) -> str:
    return format_html('<span class="badge badge-{}">{}</span>', status, label)


def _age(moment: Any) -> str:
    if moment is None:
        return "-"
    elapsed = timezone.now() - moment
    text = (
        "just now"
        if elapsed < timedelta(minutes=1)
        else f"{timesince(moment, depth=1)} ago"
    )
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z"),
        text,
    )


# --- Evaluations -------------------------------------------------------------


class ErrorCodeFilter(admin.SimpleListFilter):
    title = "error code"
    parameter_name = "error_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = (
            Evaluation.objects.exclude(error_code="")
            .order_by("error_code")
            .values_list("error_code", flat=True)
            .distinct()
        )
        return [(code, code) for code in codes]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(error_code=self.value())
        return queryset


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "status_display",
        "candidate",
        "opening",
        "cv_match",
        "project_score",
        "provider",
        "age",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        ErrorCodeFilter,
        "opening",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("id", "cv__original_filename")
    search_help_text = "Search by job id (or part of it) or by the CV's file name."
    list_select_related = ("opening", "cv")
    list_per_page = 50
    actions = ["rerun_failed"]
    readonly_fields = (
        "id",
        "status_display",
        "opening",
        "owner",
        "attempts",
        "request_id",
        "idempotency_key",
        "error_code",
        "error_message",
        "cv_document",
        "project_document",
        "cv_file",
        "project_file",
        "overall_summary",
        "cv_feedback_display",
        "project_feedback",
        "cv_breakdown",
        "project_breakdown",
        "provenance_summary",
        "durations",
        "created_at",
        "published_at",
        "started_at",
        "finished_at",
        "queue_wait",
        "processing_time",
        "job_description_override",
        "study_case_brief_override",
        "scoring_rubric_override",
    )

    # Permissions: viewing needs view (or change); nothing is ever edited in a
    # form. Model-level change permission allows re-running failed jobs.

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Jobs are created through "Evaluate a candidate".

    def has_change_permission(
        self, request: HttpRequest, obj: Evaluation | None = None
    ) -> bool:
        if obj is not None:
            return False  # The change page is a read-only report.
        return super().has_change_permission(request)

    def has_delete_permission(
        self, request: HttpRequest, obj: Evaluation | None = None
    ) -> bool:
        if obj is not None and not obj.is_terminal:
            return False  # A queued or running job belongs to the worker.
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # The confirmation page already refuses jobs that are not terminal; a
        # job that started since then is skipped, not deleted under a worker.
        super().delete_queryset(
            request, queryset.filter(status__in=Evaluation.TERMINAL_STATUSES)
        )

    # Pages.

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "evaluate/",
                self.admin_site.admin_view(self.evaluate_view),
                name="{}_{}_evaluate".format(*info),
            ),
            path(
                "<uuid:object_id>/rerun/",
                self.admin_site.admin_view(self.rerun_view),
                name="{}_{}_rerun".format(*info),
            ),
            *super().get_urls(),
        ]

    def evaluate_view(self, request: HttpRequest) -> HttpResponse:
        return admin_views.evaluate(request, self)

    def rerun_view(self, request: HttpRequest, object_id: uuid.UUID) -> HttpResponse:
        return admin_views.rerun(request, self, object_id)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_evaluate": admin_views.can_evaluate(request),
        }
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        evaluation = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if evaluation is not None:
            extra_context.update(
                auto_refresh=AUTO_REFRESH_SECONDS if not evaluation.is_terminal else 0,
                processing_time=self.processing_time(evaluation),
                provider_name=self.provider(evaluation),
                can_rerun=evaluation.status == Evaluation.Status.FAILED
                and self.has_change_permission(request),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fieldsets(
        self, request: HttpRequest, obj: Evaluation | None = None
    ) -> _FieldsetSpec:
        if obj is None:
            return []
        # Links to the documents only for those who may open them.
        documents = (
            ("cv_document", "project_document")
            if admin_views.can_read_uploads(request)
            else ("cv_file", "project_file")
        )
        # What a reviewer reads first comes first: status and documents, the
        # error or the result, then how it was produced.
        fieldsets: list[tuple[Any, _FieldOpts]] = [
            (None, {"fields": ("status_display", "opening", *documents)}),
        ]
        if obj.error_code:
            title = "Error" if obj.status == Evaluation.Status.FAILED else "Last error"
            fieldsets.append((title, {"fields": ("error_code", "error_message")}))
        if obj.breakdown:
            fieldsets.append(
                (
                    "Per-criterion breakdown",
                    {"fields": ("cv_breakdown", "project_breakdown")},
                )
            )
        if obj.status == Evaluation.Status.COMPLETED:
            fieldsets.append(
                (
                    "Feedback",
                    {
                        "fields": (
                            "overall_summary",
                            "cv_feedback_display",
                            "project_feedback",
                        )
                    },
                )
            )
        if obj.provenance:
            fieldsets.append(
                ("Provenance", {"fields": ("provenance_summary", "durations")})
            )
        fieldsets += [
            (
                "Timings",
                {
                    "fields": (
                        "created_at",
                        "published_at",
                        "started_at",
                        "finished_at",
                        "queue_wait",
                        "processing_time",
                    )
                },
            ),
            (
                "Job",
                {
                    "fields": (
                        "id",
                        "owner",
                        "attempts",
                        "request_id",
                        "idempotency_key",
                    )
                },
            ),
        ]
        overrides = (
            "job_description_override",
            "study_case_brief_override",
            "scoring_rubric_override",
        )
        if any(getattr(obj, name) for name in overrides):
            fieldsets.append(
                ("Overrides", {"fields": overrides, "classes": ("collapse",)})
            )
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The extracted texts can be long and the pages never show them.
        return (
            super()
            .get_queryset(request)
            .select_related("cv", "project", "opening", "owner")
            .defer("cv__text", "project__text")
        )

    # Actions.

    @admin.action(description="Re-run selected failed jobs", permissions=["change"])
    def rerun_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = queryset.count()
        failed = queryset.filter(status=Evaluation.Status.FAILED).values_list(
            "id", flat=True
        )
        rerun = sum(evaluation_rerun(evaluation_id=job_id) for job_id in failed)
        if not rerun:
            self.message_user(
                request,
                "None of the selected jobs had failed; nothing was re-run.",
                messages.WARNING,
            )
            return
        message = ngettext(
            "%(count)d failed job was queued to run again.",
            "%(count)d failed jobs were queued to run again.",
            rerun,
        ) % {"count": rerun}
        if selected > rerun:
            message += " " + ngettext(
                "%(count)d selected job had not failed and was left unchanged.",
                "%(count)d selected jobs had not failed and were left unchanged.",
                selected - rerun,
            ) % {"count": selected - rerun}
        self.message_user(request, message, messages.SUCCESS)

    # Columns and read-only fields.

    @admin.display(description="Job", ordering="created_at")
    def short_id(self, obj: Evaluation) -> str:
        return format_html('<code title="{}">{}</code>', obj.id, str(obj.id)[:8])

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: Evaluation) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="CV feedback")
    def cv_feedback_display(self, obj: Evaluation) -> str:
        return obj.cv_feedback

    @admin.display(description="Candidate CV", ordering="cv__original_filename")
    def candidate(self, obj: Evaluation) -> str:
        return obj.cv.original_filename

    @admin.display(description="CV match rate", ordering="cv_match_rate")
    def cv_match(self, obj: Evaluation) -> Decimal | None:
        return obj.cv_match_rate

    @admin.display(description="Provider", ordering="provenance__provider")
    def provider(self, obj: Evaluation) -> str:
        return str(obj.provenance.get("provider") or "-")

    @admin.display(description="Age", ordering="created_at")
    def age(self, obj: Evaluation) -> str:
        return _age(obj.created_at)

    @admin.display(description="CV")
    def cv_document(self, obj: Evaluation) -> str:
        return _document(obj.cv, links=True)

    @admin.display(description="Project report")
    def project_document(self, obj: Evaluation) -> str:
        return _document(obj.project, links=True)

    @admin.display(description="CV")
    def cv_file(self, obj: Evaluation) -> str:
        return _document(obj.cv, links=False)

    @admin.display(description="Project report")
    def project_file(self, obj: Evaluation) -> str:
        return _document(obj.project, links=False)

    @admin.display(description="CV criteria")
    def cv_breakdown(self, obj: Evaluation) -> str:
        return _breakdown_table(obj.breakdown.get("cv") or [], scale="cv")

    @admin.display(description="Project criteria")
    def project_breakdown(self, obj: Evaluation) -> str:
        return _breakdown_table(obj.breakdown.get("project") or [], scale="project")

    @admin.display(description="Pipeline")
    def provenance_summary(self, obj: Evaluation) -> str:
        provenance = obj.provenance
        prompt_tokens = int(provenance.get("prompt_tokens") or 0)
        completion_tokens = int(provenance.get("completion_tokens") or 0)
        rows = [
            ("Provider", provenance.get("provider")),
            ("Model", provenance.get("model")),
            ("Prompt version", provenance.get("prompt_version")),
            ("Retrieval backend", provenance.get("retrieval_backend")),
            (
                "Tokens",
                f"{prompt_tokens + completion_tokens} ({prompt_tokens} prompt, "
                f"{completion_tokens} completion)",
            ),
            ("LLM calls", provenance.get("llm_calls")),
            ("Attempt", provenance.get("attempts")),
        ]
        return format_html(
            '<table class="facts">{}</table>',
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                (
                    (label, "-" if value in (None, "") else value)
                    for label, value in rows
                ),
            ),
        )

    @admin.display(description="Step durations")
    def durations(self, obj: Evaluation) -> str:
        steps = obj.provenance.get("durations_ms") or {}
        if not steps:
            return "-"
        # PostgreSQL's jsonb does not keep key order: show the pipeline's.
        order = {step: position for position, step in enumerate(STEP_LABELS)}
        ordered = sorted(steps.items(), key=lambda item: order.get(item[0], 50))
        return format_html(
            '<table class="facts">{}</table>',
            format_html_join(
                "",
                "<tr><th>{}</th><td>{} ms</td></tr>",
                (
                    (STEP_LABELS.get(step) or capfirst(str(step)), value)
                    for step, value in ordered
                ),
            ),
        )

    @admin.display(description="Queue wait")
    def queue_wait(self, obj: Evaluation) -> str:
        if obj.started_at is None or obj.started_at < obj.created_at:
            return "-"
        return format_duration(obj.started_at - obj.created_at)

    @admin.display(description="Processing time")
    def processing_time(self, obj: Evaluation) -> str:
        if obj.started_at is None or obj.finished_at is None:
            return "-"
        return format_duration(obj.finished_at - obj.started_at)


def _document(upload: Upload, *, links: bool) -> str:
    details = format_html(
        '{} <span class="quiet">({}, {})</span>',
        upload.original_filename,
        upload.content_type,
        filesizeformat(upload.size_bytes),
    )
    if not links:
        return details
    return format_html(
        '{} <span class="document-links"><a href="{}">Download</a> · '
        '<a href="{}">View extracted text</a></span>',
        details,
        reverse("admin:evaluations_upload_download", args=[upload.pk]),
        reverse("admin:evaluations_upload_text", args=[upload.pk]),
    )


def _breakdown_table(criteria: list[dict[str, Any]], *, scale: str) -> str:
    """Criterion, weight, score and rationale, with the weighted total."""
    if not criteria:
        return "-"
    rows = []
    scores = []
    for criterion in criteria:
        weight = Decimal(str(criterion.get("weight") or 0))
        score = criterion.get("score")
        rows.append(
            {
                "name": criterion.get("name") or criterion.get("key"),
                "key": criterion.get("key"),
                "weight": f"{float(weight) * 100:.4g}%",
                "score": score,
                "percent": score * 20 if isinstance(score, int) else 0,
                "rationale": criterion.get("rationale", ""),
            }
        )
        scores.append(
            scoring.CriterionScore(
                key=str(criterion.get("key")),
                name=str(criterion.get("name")),
                weight=weight,
                score=score if isinstance(score, int) else 0,
                rationale="",
            )
        )
    # The headline figure, recomputed from these rows exactly as the pipeline
    # does (a missing or out-of-range score is a ScoringError there too).
    try:
        weighted = f"{scoring.weighted_sum(scores):.2f}"
        result = (
            ("CV match rate", f"{scoring.cv_match_rate(scores):.2f}")
            if scale == "cv"
            else ("Project score", f"{scoring.project_score(scores):.1f} / 10")
        )
    except scoring.ScoringError:
        weighted, result = "", None
    return render_to_string(
        "admin/evaluations/evaluation/breakdown_table.html",
        {"rows": rows, "weighted": weighted, "result": result},
    )


# --- Uploads -------------------------------------------------------------------


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "kind",
        "content_type",
        "size",
        "owner",
        "created_at",
    )
    list_filter = ("kind", "content_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("id", "original_filename", "sha256")
    list_select_related = ("owner",)
    fields = (
        "id",
        "kind",
        "original_filename",
        "content_type",
        "size",
        "sha256",
        "owner",
        "created_at",
        "document",
    )
    readonly_fields = fields

    # Uploads are evidence for evaluations: read-only, removed by retention.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Upload | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Upload | None = None
    ) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<uuid:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="{}_{}_download".format(*info),
            ),
            path(
                "<uuid:object_id>/text/",
                self.admin_site.admin_view(self.text_view),
                name="{}_{}_text".format(*info),
            ),
            *super().get_urls(),
        ]

    def download_view(
        self, request: HttpRequest, object_id: uuid.UUID
    ) -> HttpResponseBase:
        return admin_views.upload_download(request, self, object_id)

    def text_view(self, request: HttpRequest, object_id: uuid.UUID) -> HttpResponse:
        return admin_views.upload_text(request, self, object_id)

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, obj: Upload) -> str:
        return filesizeformat(obj.size_bytes)

    @admin.display(description="Document")
    def document(self, obj: Upload) -> str:
        return format_html(
            '<a href="{}">Download the original</a> · <a href="{}">View extracted '
            "text</a> <span class='quiet'>({} characters)</span>",
            reverse("admin:evaluations_upload_download", args=[obj.pk]),
            reverse("admin:evaluations_upload_text", args=[obj.pk]),
            len(obj.text),
        )


# --- Job openings ----------------------------------------------------------------


class RubricCriterionInline(admin.TabularInline):
    model = RubricCriterion
    form = RubricCriterionForm
    formset = RubricCriterionFormSet
    extra = 0
    fields = ("group", "key", "name", "weight", "guide", "position")
    ordering = ("group", "position", "key")
    verbose_name_plural = "rubric criteria (the weights of each group sum to 1)"


@admin.register(JobOpening)
class JobOpeningAdmin(admin.ModelAdmin):
    form = JobOpeningForm
    list_display = (
        "title",
        "default_display",
        "criteria_summary",
        "evaluation_count",
        "updated_at",
    )
    list_display_links = ("title",)
    search_fields = ("title", "slug")
    ordering = ("-is_default", "title")
    prepopulated_fields = {"slug": ("title",)}
    fieldsets = (
        (None, {"fields": ("title", "slug", "make_default")}),
        ("Documents", {"fields": ("job_description", "study_case_brief")}),
    )
    inlines = [RubricCriterionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                cv_criteria=Count(
                    "criteria", filter=Q(criteria__group="cv"), distinct=True
                ),
                project_criteria=Count(
                    "criteria", filter=Q(criteria__group="project"), distinct=True
                ),
                # A subquery: joining evaluations next to criteria would count
                # their cross product.
                evaluation_total=Coalesce(
                    Subquery(
                        Evaluation.objects.filter(opening=OuterRef("pk"))
                        .order_by()
                        .values("opening")
                        .annotate(total=Count("id"))
                        .values("total")
                    ),
                    0,
                ),
            )
        )

    def has_delete_permission(
        self, request: HttpRequest, obj: JobOpening | None = None
    ) -> bool:
        if obj is not None and obj.is_default:
            return False  # Make another opening the default first.
        return super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: JobOpening, form: ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("make_default") and not obj.is_default:
            opening_set_default(opening=obj)
            self.message_user(
                request, f"“{obj.title}” is now the default opening.", messages.INFO
            )

    @admin.display(description="Default", ordering="is_default")
    def default_display(self, obj: JobOpening) -> str:
        return status_badge("default", "Default") if obj.is_default else ""

    @admin.display(description="Rubric")
    def criteria_summary(self, obj: JobOpening) -> str:
        cv, project = obj.cv_criteria, obj.project_criteria  # type: ignore[attr-defined]
        return f"{cv} CV, {project} project criteria"

    @admin.display(description="Evaluations", ordering="evaluation_total")
    def evaluation_count(self, obj: JobOpening) -> int:
        return obj.evaluation_total  # type: ignore[attr-defined, no-any-return]
