"""Admin registration: review evaluations, edit openings and their rubrics."""

from __future__ import annotations

from django.contrib import admin

from evaluations.models import Evaluation, JobOpening, RubricCriterion, Upload


class RubricCriterionInline(admin.TabularInline):
    model = RubricCriterion
    extra = 0
    fields = ("group", "key", "name", "weight", "guide", "position")


@admin.register(JobOpening)
class JobOpeningAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "is_default", "updated_at")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [RubricCriterionInline]


@admin.register(RubricCriterion)
class RubricCriterionAdmin(admin.ModelAdmin):
    list_display = ("name", "opening", "group", "weight")
    list_filter = ("opening", "group")


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "kind",
        "content_type",
        "size_bytes",
        "created_at",
    )
    list_filter = ("kind", "content_type")
    search_fields = ("id", "original_filename")
    readonly_fields = [f.name for f in Upload._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "opening",
        "cv_match_rate",
        "project_score",
        "created_at",
    )
    list_filter = ("status", "opening", "created_at")
    search_fields = ("id", "cv__original_filename")
    readonly_fields = [f.name for f in Evaluation._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
