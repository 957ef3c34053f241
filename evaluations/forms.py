"""Forms of the admin screens: evaluating a candidate, editing openings and rubrics.

Validation that the API also does is left to the services, so both show the
same messages: the forms only map a `ServiceError` to the field it names.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from evaluations.exceptions import ServiceError
from evaluations.models import Evaluation, JobOpening, RubricCriterion, Upload
from evaluations.selectors import opening_get
from evaluations.services import (
    OVERRIDE_LIMITS,
    evaluation_create,
    rubric_weight_errors,
    upload_pair_create,
)
from evaluations.uploads import upload_limit_bytes

T = TypeVar("T")

# Fields named by the services' errors, as named on the form.
SERVICE_FIELDS = {
    "cv": "cv",
    "cv_id": "cv",
    "project": "project",
    "project_id": "project",
    "job_title": "opening",
    "job_description": "job_description",
    "study_case_brief": "study_case_brief",
    "scoring_rubric": "scoring_rubric",
}


class _ServiceErrors(Exception):
    """Roll the submission back: the form has collected the services' errors."""


class EvaluateForm(forms.Form):
    required_css_class = "required"

    # Empty files are the service's to refuse, with the API's message.
    cv = forms.FileField(label="CV", allow_empty_file=True)
    project = forms.FileField(label="Project report", allow_empty_file=True)
    opening = forms.ModelChoiceField(
        queryset=JobOpening.objects.all(),
        label="Job opening",
        empty_label=None,
        help_text="The job description, case-study brief and rubric to score against.",
    )
    job_description = forms.CharField(
        label="Job description override",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional: replaces the opening's job description for this "
        "evaluation only.",
    )
    study_case_brief = forms.CharField(
        label="Case-study brief override",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional: replaces the opening's case-study brief.",
    )
    scoring_rubric = forms.CharField(
        label="Scoring rubric override",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional: extra rubric text given to the model; the opening's "
        "criteria and weights still score the result.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        accepted = f"PDF, DOCX or plain text, up to {settings.MAX_UPLOAD_MB} MB."
        for name in ("cv", "project"):
            self.fields[name].help_text = accepted
        # The browser helps with the limits; the service has the last word.
        for name, limit in OVERRIDE_LIMITS.items():
            self.fields[name].widget.attrs["maxlength"] = str(limit)
        default = opening_get(title=None)
        if default is not None:
            self.fields["opening"].initial = default.pk

    def save(self, *, owner: Any) -> Evaluation | None:
        """Store both documents and queue the evaluation; None when refused.

        The same services as `POST /v1/upload` and `POST /v1/evaluate` do the
        work, so the errors, added next to the field they concern, read the
        same. Nothing is kept unless everything succeeds.
        """
        uploads: tuple[Upload, ...] = ()
        try:
            with transaction.atomic():
                uploads = self._call(
                    upload_pair_create,
                    owner=owner,
                    cv=self.cleaned_data["cv"],
                    project=self.cleaned_data["project"],
                    max_bytes=upload_limit_bytes(),
                )
                cv, project = uploads
                opening: JobOpening = self.cleaned_data["opening"]
                evaluation, _ = self._call(
                    evaluation_create,
                    owner=owner,
                    cv_id=cv.id,
                    project_id=project.id,
                    opening=opening,
                    job_description=self.cleaned_data["job_description"],
                    study_case_brief=self.cleaned_data["study_case_brief"],
                    scoring_rubric=self.cleaned_data["scoring_rubric"],
                )
        except _ServiceErrors:
            # The rows were rolled back; stored files are not transactional.
            for upload in uploads:
                upload.file.delete(save=False)
            return None
        return evaluation

    def _call(self, service: Callable[..., T], **kwargs: Any) -> T:
        try:
            return service(**kwargs)
        except ServiceError as exc:
            field = SERVICE_FIELDS.get(exc.field or "")
            self.add_error(field, exc.message)
            raise _ServiceErrors from exc


class JobOpeningForm(forms.ModelForm):
    # Not the model field itself: making an opening the default also un-marks
    # the current one, which the admin does after validation (see
    # `JobOpeningAdmin.save_model`); validating `is_default` here would trip
    # the one-default constraint first.
    make_default = forms.BooleanField(
        label="Default opening",
        required=False,
        help_text="Used when an evaluation names no job title. Making this "
        "opening the default un-marks the current default.",
    )

    class Meta:
        model = JobOpening
        fields = ["title", "slug", "job_description", "study_case_brief"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["make_default"].initial = self.instance.is_default

    def clean_make_default(self) -> bool:
        make_default = self.cleaned_data["make_default"]
        if self.instance.is_default and not make_default:
            raise ValidationError(
                "There must be a default opening: make another opening the "
                "default instead.",
                code="default_required",
            )
        return make_default


class RubricCriterionForm(forms.ModelForm):
    weight = forms.DecimalField(
        min_value=Decimal("0.001"), max_value=Decimal(1), max_digits=4, decimal_places=3
    )

    class Meta:
        model = RubricCriterion
        fields = ["group", "key", "name", "weight", "guide", "position"]
        widgets = {
            "key": forms.TextInput(attrs={"size": 14}),
            "name": forms.TextInput(attrs={"size": 20}),
            "guide": forms.Textarea(attrs={"rows": 2, "cols": 24}),
            "position": forms.NumberInput(attrs={"style": "width: 3em"}),
        }


class RubricCriterionFormSet(forms.BaseInlineFormSet):
    """Criteria of one opening: each group's weights must sum to 1."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # Weights of invalid rows are unknown; fix those first.
        weights: dict[str, list[Decimal]] = {
            group: [] for group in RubricCriterion.Group.values
        }
        for form in self.forms:
            if not form.has_changed() and form.instance.pk is None:
                continue  # An extra row left blank.
            if self.can_delete and form.cleaned_data.get("DELETE"):
                continue
            group = form.cleaned_data.get("group")
            weight = form.cleaned_data.get("weight")
            if group and weight is not None:
                weights[group].append(weight)
        errors = [
            f"Add at least one {RubricCriterion.Group(group).label} criterion."
            for group, group_weights in weights.items()
            if not group_weights
        ]
        errors += rubric_weight_errors(weights)
        if errors:
            raise ValidationError(errors, code="rubric_weights")
