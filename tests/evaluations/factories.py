"""Factories for the evaluation domain's models."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from evaluations.models import Evaluation, JobOpening, RubricCriterion, Upload


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class UploadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Upload

    kind = Upload.Kind.CV
    original_filename = factory.Sequence(lambda n: f"document-{n}.txt")
    content_type = "text/plain"
    text = factory.Faker("paragraph", nb_sentences=8)
    size_bytes = factory.LazyAttribute(lambda upload: len(upload.text.encode()))
    sha256 = factory.LazyAttribute(
        lambda upload: hashlib.sha256(upload.text.encode()).hexdigest()
    )
    file = factory.LazyAttribute(
        lambda upload: ContentFile(upload.text.encode(), name=upload.original_filename)
    )
    owner = factory.SubFactory(UserFactory)


class JobOpeningFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobOpening

    title = factory.Sequence(lambda n: f"Opening {n}")
    slug = factory.Sequence(lambda n: f"opening-{n}")
    job_description = "Backend engineer: Python, Django, PostgreSQL, Kafka."
    study_case_brief = "Build an API that evaluates CVs with an LLM chain."
    is_default = False


class RubricCriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RubricCriterion

    opening = factory.SubFactory(JobOpeningFactory)
    group = RubricCriterion.Group.CV
    key = factory.Sequence(lambda n: f"criterion_{n}")
    name = factory.Sequence(lambda n: f"Criterion {n}")
    weight = Decimal("1.000")
    guide = "1 = absent, 5 = excellent."


class EvaluationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evaluation

    owner = factory.SubFactory(UserFactory)
    cv = factory.SubFactory(
        UploadFactory, kind=Upload.Kind.CV, owner=factory.SelfAttribute("..owner")
    )
    project = factory.SubFactory(
        UploadFactory, kind=Upload.Kind.PROJECT, owner=factory.SelfAttribute("..owner")
    )
    opening = factory.LazyFunction(lambda: JobOpening.objects.get(is_default=True))
    status = Evaluation.Status.QUEUED
