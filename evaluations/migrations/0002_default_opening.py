"""Seed the default job opening, "Product Engineer (Backend)", and its rubric."""

from decimal import Decimal

from django.db import migrations

DEFAULT_SLUG = "product-engineer-backend"


def seed_default_opening(apps, schema_editor):
    from evaluations.pipeline import defaults

    JobOpening = apps.get_model("evaluations", "JobOpening")
    RubricCriterion = apps.get_model("evaluations", "RubricCriterion")
    if JobOpening.objects.filter(slug=DEFAULT_SLUG).exists():
        return
    opening = JobOpening.objects.create(
        title=defaults.DEFAULT_JOB_TITLE,
        slug=DEFAULT_SLUG,
        job_description=defaults.DEFAULT_JOB_DESCRIPTION,
        study_case_brief=defaults.DEFAULT_STUDY_CASE_BRIEF,
        is_default=not JobOpening.objects.filter(is_default=True).exists(),
    )
    for group, criteria in (
        ("cv", defaults.DEFAULT_CV_CRITERIA),
        ("project", defaults.DEFAULT_PROJECT_CRITERIA),
    ):
        for position, criterion in enumerate(criteria):
            RubricCriterion.objects.create(
                opening=opening,
                group=group,
                key=criterion["key"],
                name=criterion["name"],
                weight=Decimal(criterion["weight"]),
                guide=criterion["guide"],
                position=position,
            )


def remove_default_opening(apps, schema_editor):
    apps.get_model("evaluations", "JobOpening").objects.filter(
        slug=DEFAULT_SLUG, evaluations__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("evaluations", "0001_initial")]

    operations = [
        migrations.RunPython(seed_default_opening, remove_default_opening),
    ]
