"""Admin pages beyond the generic ones: evaluate a candidate, re-run a job, and
read a stored document.

Each view is wired in by its `ModelAdmin.get_urls()` behind
`AdminSite.admin_view` (staff login, CSRF, no caching) and checks its own
permission:

- evaluating a candidate needs `evaluations.add_evaluation` (it creates a job)
  and `evaluations.view_evaluation` (it lands on the job's page);
- re-running a job needs `evaluations.change_evaluation`;
- downloading a document or reading its extracted text needs
  `evaluations.view_upload`: CVs are personal data, granted on their own.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from evaluations.forms import EvaluateForm
from evaluations.models import Evaluation, Upload
from evaluations.services import evaluation_rerun

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


def can_evaluate(request: HttpRequest) -> bool:
    user = request.user
    return user.has_perm("evaluations.add_evaluation") and user.has_perm(
        "evaluations.view_evaluation"
    )


def can_read_uploads(request: HttpRequest) -> bool:
    return request.user.has_perm("evaluations.view_upload")


def _admin_context(
    request: HttpRequest, model_admin: ModelAdmin, **extra: Any
) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        **extra,
    }


def evaluate(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    if not can_evaluate(request):
        raise PermissionDenied
    if request.method == "POST":
        form = EvaluateForm(request.POST, request.FILES)
        if form.is_valid():
            evaluation = form.save(owner=request.user)
            if evaluation is not None:
                messages.success(
                    request,
                    "The evaluation is queued; this page updates itself until "
                    "it is done.",
                )
                return redirect("admin:evaluations_evaluation_change", evaluation.pk)
    else:
        form = EvaluateForm()
    context = _admin_context(
        request, model_admin, title="Evaluate a candidate", form=form
    )
    return TemplateResponse(
        request, "admin/evaluations/evaluation/evaluate.html", context
    )


@require_POST
def rerun(
    request: HttpRequest, model_admin: ModelAdmin, object_id: uuid.UUID
) -> HttpResponse:
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    evaluation = get_object_or_404(Evaluation, pk=object_id)
    if evaluation_rerun(evaluation_id=evaluation.pk):
        messages.success(request, "The job is queued to run again.")
    else:
        messages.warning(
            request, "Only failed jobs can be re-run; this job was left unchanged."
        )
    return redirect("admin:evaluations_evaluation_change", evaluation.pk)


def upload_download(
    request: HttpRequest, model_admin: ModelAdmin, object_id: uuid.UUID
) -> FileResponse:
    if not can_read_uploads(request):
        raise PermissionDenied
    upload = get_object_or_404(Upload, pk=object_id)
    try:
        handle = upload.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The stored file is missing.") from exc
    return FileResponse(
        handle,
        as_attachment=True,
        filename=upload.original_filename,
        content_type=upload.content_type,
    )


def upload_text(
    request: HttpRequest, model_admin: ModelAdmin, object_id: uuid.UUID
) -> HttpResponse:
    if not can_read_uploads(request):
        raise PermissionDenied
    upload = get_object_or_404(Upload, pk=object_id)
    context = _admin_context(
        request,
        model_admin,
        title=f"Extracted text of {upload.original_filename}",
        upload=upload,
        download_url=reverse("admin:evaluations_upload_download", args=[upload.pk]),
        change_url=reverse("admin:evaluations_upload_change", args=[upload.pk]),
    )
    return TemplateResponse(request, "admin/evaluations/upload/text.html", context)
