"""`{% evaluation_dashboard %}`: the job and queue figures on the admin index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from evaluations import dashboard
from evaluations.models import Evaluation

register = template.Library()

STATUS_TONES = {
    Evaluation.Status.QUEUED: "queued",
    Evaluation.Status.PROCESSING: "processing",
    Evaluation.Status.COMPLETED: "completed",
    Evaluation.Status.FAILED: "failed",
}


@register.inclusion_tag("admin/evaluations/dashboard.html", takes_context=True)
def evaluation_dashboard(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    if request is None or not request.user.has_perm("evaluations.view_evaluation"):
        return {"visible": False}
    changelist = reverse("admin:evaluations_evaluation_changelist")
    counts = dashboard.status_counts()
    now = timezone.now()
    return {
        "visible": True,
        "changelist_url": changelist,
        "statuses": [
            {
                "label": label,
                "tone": STATUS_TONES[Evaluation.Status(value)],
                "count": counts[value],
                "url": f"{changelist}?status__exact={value}",
            }
            for value, label in Evaluation.Status.choices
        ],
        "total": sum(counts.values()),
        "throughput": dashboard.throughput(now=now),
        "times": dashboard.processing_times(since=now - timedelta(days=1)),
        "failures": [
            {
                "code": code,
                "count": count,
                "url": f"{changelist}?status__exact=failed&error_code={code}",
            }
            for code, count in dashboard.failure_codes()
        ],
        "can_rerun": request.user.has_perm("evaluations.change_evaluation"),
        "queue": dashboard.queue_status(),
    }


@register.filter("duration")
def format_duration(value: timedelta | None) -> str:
    """A duration as "850 ms", "4.2 s" or "3 min 12 s"; "-" when unknown."""
    if value is None:
        return "-"
    total = value.total_seconds()
    if total < 1:
        return f"{total * 1000:.0f} ms"
    if total < 60:
        return f"{total:.1f} s"
    minutes, rest = divmod(round(total), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
