"""Writes in the evaluation domain.

The job status machine is a set of guarded compare-and-set updates: each
transition names the state it expects, so a late or duplicate worker cannot
overwrite a terminal state. Allowed moves:

    queued -> processing -> completed | failed
    processing -> queued     (a transient failure handed back for a retry)
    failed -> queued         (an explicit re-run)

A claim (`-> processing`) also takes over a job left `processing` by a worker
that died; each claim gets a fresh run token and only the latest claim may
finish the job.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from evaluations.exceptions import (
    ConflictError,
    InvalidInput,
    NotFoundError,
    TooLargeError,
    UnsupportedTypeError,
)
from evaluations.models import Evaluation, JobOpening, RubricCriterion, Upload
from evaluations.pipeline.chain import (
    PROMPT_VERSION,
    ChainInput,
    Criterion,
    LLMProvider,
    Provider,
)
from evaluations.pipeline.extraction import (
    DocumentTooLarge,
    ExtractionError,
    UnsupportedFileType,
    extract_text,
)
from evaluations.pipeline.llm import LLMClient, LLMConfig, LLMError
from evaluations.pipeline.offline import OfflineProvider
from evaluations.pipeline.retrieval import (
    EmbeddingsBackend,
    PostgresFullTextBackend,
    RetrievalBackend,
    build_chunks,
    retrieve,
)
from evaluations.pipeline.scoring import WEIGHT_TOLERANCE, ScoringError
from evaluations.selectors import (
    evaluation_get_for_run,
    opening_get,
    uploads_get_for_user,
)
from queueing.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


class RubricWeightsError(ValueError):
    """The weights of a rubric group do not sum to 1."""


def rubric_weight_errors(weights_by_group: dict[str, list[Decimal]]) -> list[str]:
    """Messages for every group whose weights do not sum to 1."""
    errors = []
    for group, weights in sorted(weights_by_group.items()):
        total = sum(weights, Decimal(0))
        if weights and abs(total - 1) > WEIGHT_TOLERANCE:
            errors.append(
                f"The {group} criteria weights sum to {total.normalize()}; "
                "they must sum to 1."
            )
    return errors


def opening_validate_weights(*, opening: JobOpening) -> None:
    weights: dict[str, list[Decimal]] = {}
    for criterion in opening.criteria.all():
        weights.setdefault(criterion.group, []).append(criterion.weight)
    errors = rubric_weight_errors(weights)
    if errors:
        raise RubricWeightsError(" ".join(errors))


@transaction.atomic
def opening_set_default(*, opening: JobOpening) -> None:
    """Make `opening` the default, un-marking the current default."""
    JobOpening.objects.filter(is_default=True).exclude(pk=opening.pk).update(
        is_default=False
    )
    JobOpening.objects.filter(pk=opening.pk).update(is_default=True)
    opening.is_default = True


@dataclass(frozen=True)
class CriterionSpec:
    group: str
    key: str
    name: str
    weight: Decimal
    guide: str = ""


@transaction.atomic
def opening_create(
    *,
    title: str,
    slug: str,
    job_description: str,
    study_case_brief: str,
    criteria: list[CriterionSpec],
    is_default: bool = False,
) -> JobOpening:
    """Create an opening with its rubric; refuses weights that do not sum to 1."""
    opening = JobOpening.objects.create(
        title=title,
        slug=slug,
        job_description=job_description,
        study_case_brief=study_case_brief,
    )
    if is_default:
        opening_set_default(opening=opening)
    RubricCriterion.objects.bulk_create(
        RubricCriterion(
            opening=opening,
            group=spec.group,
            key=spec.key,
            name=spec.name,
            weight=spec.weight,
            guide=spec.guide,
            position=position,
        )
        for position, spec in enumerate(criteria)
    )
    opening_validate_weights(opening=opening)
    return opening


# --- The status machine ------------------------------------------------------


def _transition(
    evaluation_id: uuid.UUID | str,
    *,
    expected: Q,
    changes: dict[str, Any],
) -> bool:
    """One guarded UPDATE; True when this call made the move."""
    updated = Evaluation.objects.filter(expected, id=evaluation_id).update(**changes)
    return updated == 1


def evaluation_claim(*, evaluation_id: uuid.UUID | str) -> uuid.UUID | None:
    """Move a job to `processing` for this run; None when it is not runnable.

    A job still `processing` is claimable too: its message was redelivered
    because the worker that held it died. The new run token fences that worker
    out should it still be alive.
    """
    token = uuid.uuid4()
    claimed = _transition(
        evaluation_id,
        expected=Q(status__in=[Evaluation.Status.QUEUED, Evaluation.Status.PROCESSING]),
        changes={
            "status": Evaluation.Status.PROCESSING,
            "run_token": token,
            "attempts": F("attempts") + 1,
            "started_at": timezone.now(),
        },
    )
    return token if claimed else None


def evaluation_complete(
    *,
    evaluation_id: uuid.UUID | str,
    run_token: uuid.UUID,
    cv_match_rate: Decimal,
    cv_feedback: str,
    project_score: Decimal,
    project_feedback: str,
    overall_summary: str,
    breakdown: dict[str, Any],
    provenance: dict[str, Any],
) -> bool:
    return _transition(
        evaluation_id,
        expected=Q(status=Evaluation.Status.PROCESSING, run_token=run_token),
        changes={
            "status": Evaluation.Status.COMPLETED,
            "finished_at": timezone.now(),
            "cv_match_rate": cv_match_rate,
            "cv_feedback": cv_feedback,
            "project_score": project_score,
            "project_feedback": project_feedback,
            "overall_summary": overall_summary,
            "breakdown": breakdown,
            "provenance": provenance,
            "error_code": "",
            "error_message": "",
        },
    )


def evaluation_fail(
    *,
    evaluation_id: uuid.UUID | str,
    run_token: uuid.UUID | None,
    code: str,
    message: str,
    provenance: dict[str, Any] | None = None,
) -> bool:
    """Fail a job this run holds (or, with no token, any job not yet finished)."""
    expected = (
        Q(status=Evaluation.Status.PROCESSING, run_token=run_token)
        if run_token is not None
        else Q(status__in=[Evaluation.Status.QUEUED, Evaluation.Status.PROCESSING])
    )
    changes: dict[str, Any] = {
        "status": Evaluation.Status.FAILED,
        "finished_at": timezone.now(),
        "error_code": code,
        "error_message": message,
    }
    if provenance is not None:
        changes["provenance"] = provenance
    return _transition(evaluation_id, expected=expected, changes=changes)


def evaluation_release(
    *, evaluation_id: uuid.UUID | str, run_token: uuid.UUID, code: str, message: str
) -> bool:
    """Hand a job back to `queued` after a transient failure, for a retry."""
    return _transition(
        evaluation_id,
        expected=Q(status=Evaluation.Status.PROCESSING, run_token=run_token),
        changes={
            "status": Evaluation.Status.QUEUED,
            "run_token": None,
            "error_code": code,
            "error_message": message,
        },
    )


def evaluation_requeue(*, evaluation_id: uuid.UUID | str) -> bool:
    """`failed -> queued`, clearing the error; the caller publishes the job."""
    return _transition(
        evaluation_id,
        expected=Q(status=Evaluation.Status.FAILED),
        changes={
            "status": Evaluation.Status.QUEUED,
            "run_token": None,
            "error_code": "",
            "error_message": "",
            "started_at": None,
            "finished_at": None,
            "published_at": None,
        },
    )


# --- API access ----------------------------------------------------------------


@transaction.atomic
def api_token_create(*, username: str, staff: bool = False) -> str:
    """The user's API token key, creating the user and token when missing."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
    if staff and not user.is_staff:
        user.is_staff = True
    user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


# --- Running an evaluation -----------------------------------------------------

USER_MESSAGES = {
    "llm_unavailable": "The language model provider was unavailable; the "
    "evaluation could not be completed.",
    "llm_rejected": "The language model provider rejected the request; check the "
    "service's model configuration.",
    "llm_invalid_output": "The language model's answer did not follow the scoring "
    "format, even after a repair attempt.",
    "scoring_error": "The rubric could not be scored; check its criteria weights.",
    "internal_error": "The evaluation failed because of an internal error.",
}


def _provider() -> Provider:
    from django.conf import settings

    if not settings.LLM_API_KEY:
        return OfflineProvider()
    return LLMProvider(_llm_client(_llm_config()))


@functools.lru_cache(maxsize=4)
def _llm_client(config: LLMConfig) -> LLMClient:
    """One client per configuration and process: its connections are reused
    across jobs and threads (httpx clients are thread-safe)."""
    return LLMClient(config)


def _llm_config() -> LLMConfig:
    from django.conf import settings

    return LLMConfig(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        models=tuple(settings.LLM_MODELS),
        timeout_seconds=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,
        json_mode=settings.LLM_JSON_MODE,
    )


def _retrieval_backend() -> RetrievalBackend:
    from django.conf import settings

    if settings.RETRIEVAL_BACKEND == "embeddings" and settings.LLM_API_KEY:
        return EmbeddingsBackend(_llm_client(_llm_config()), settings.EMBEDDINGS_MODEL)
    return PostgresFullTextBackend()


def evaluation_chain_input(
    *, evaluation: Evaluation, backend: RetrievalBackend
) -> ChainInput:
    """The opening's documents (or this job's overrides) with retrieved context."""
    opening = evaluation.opening
    job_description = evaluation.job_description_override or opening.job_description
    brief = evaluation.study_case_brief_override or opening.study_case_brief
    criteria = list(opening.criteria.all())

    def as_chain(group: str) -> tuple[Criterion, ...]:
        return tuple(
            Criterion(key=c.key, name=c.name, weight=c.weight, guide=c.guide)
            for c in criteria
            if c.group == group
        )

    rubric_texts = (
        [evaluation.scoring_rubric_override]
        if evaluation.scoring_rubric_override
        else [f"{c.name}: {c.guide}" for c in criteria]
    )
    chunks = build_chunks(job_description, brief, rubric_texts)
    cv_text, project_text = evaluation.cv.text, evaluation.project.text
    cv_context = retrieve(
        cv_text, chunks, backend, top_k=4, source=("job_description", "rubric")
    )
    project_context = retrieve(
        project_text, chunks, backend, top_k=4, source=("study_case_brief", "rubric")
    )
    return ChainInput(
        cv_text=cv_text,
        project_text=project_text,
        job_title=opening.title,
        job_description=job_description,
        study_case_brief=brief,
        cv_criteria=as_chain("cv"),
        project_criteria=as_chain("project"),
        cv_context=tuple(chunk.text for chunk in cv_context),
        project_context=tuple(chunk.text for chunk in project_context),
    )


def _provenance(
    *,
    provider: str,
    model: str,
    prompt_version: str,
    retrieval_backend: str,
    attempts: int,
    durations_ms: dict[str, int],
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    llm_calls: int = 0,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "prompt_version": prompt_version,
        "retrieval_backend": retrieval_backend,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "llm_calls": llm_calls,
        "durations_ms": durations_ms,
        "attempts": attempts,
    }


def evaluation_run(*, evaluation_id: uuid.UUID | str, final_attempt: bool) -> bool:
    """Run the pipeline for one job; True when this call completed it.

    A job that is not runnable (already finished, or claimed by a newer run)
    is skipped. A transient failure hands the job back for a retry and raises
    `TransientError`, unless this is the final attempt: then the job fails and
    the error is raised for the task layer to dead-letter it.
    """
    token = evaluation_claim(evaluation_id=evaluation_id)
    if token is None:
        logger.info("evaluation %s is not runnable; skipped", evaluation_id)
        return False
    evaluation = evaluation_get_for_run(evaluation_id=evaluation_id)
    started = time.perf_counter()
    provider = _provider()
    backend = _retrieval_backend()
    try:
        chain_input = evaluation_chain_input(evaluation=evaluation, backend=backend)
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        result = provider.run(chain_input)
        cv_match_rate = Decimal(str(result.cv_match_rate))
        project_score = Decimal(str(result.project_score))
    except (LLMError, ScoringError) as exc:
        code, transient = (
            (exc.code, exc.transient)
            if isinstance(exc, LLMError)
            else ("scoring_error", False)
        )
        message = USER_MESSAGES.get(code, USER_MESSAGES["internal_error"])
        logger.warning(
            "evaluation %s failed: %s (%s)", evaluation_id, code, type(exc).__name__
        )
        provenance = _provenance(
            provider=provider.name,
            model="",
            prompt_version=PROMPT_VERSION,
            retrieval_backend=backend.name,
            attempts=evaluation.attempts,
            durations_ms={"total": int((time.perf_counter() - started) * 1000)},
        )
        if transient and not final_attempt:
            evaluation_release(
                evaluation_id=evaluation_id, run_token=token, code=code, message=message
            )
            raise TransientError(message, code=code) from exc
        evaluation_fail(
            evaluation_id=evaluation_id,
            run_token=token,
            code=code,
            message=message,
            provenance=provenance,
        )
        error_class = TransientError if transient else PermanentError
        raise error_class(message, code=code) from exc

    durations = {"retrieval": retrieval_ms, **result.step_durations_ms}
    durations["total"] = int((time.perf_counter() - started) * 1000)
    return evaluation_complete(
        evaluation_id=evaluation_id,
        run_token=token,
        cv_match_rate=cv_match_rate,
        cv_feedback=result.cv_feedback,
        project_score=project_score,
        project_feedback=result.project_feedback,
        overall_summary=result.overall_summary,
        breakdown=result.breakdown(),
        provenance=_provenance(
            provider=result.provider,
            model=result.model,
            prompt_version=result.prompt_version,
            retrieval_backend=backend.name,
            attempts=evaluation.attempts,
            durations_ms=durations,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            llm_calls=result.llm_calls,
        ),
    )


# --- Uploads --------------------------------------------------------------------

MAX_FILENAME_LENGTH = 255


def _clean_filename(name: str) -> str:
    """The client's file name for display only: last component, printable, short."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in base if ch.isprintable()).strip()
    return (printable or "upload")[-MAX_FILENAME_LENGTH:]


@dataclass(frozen=True)
class _CheckedDocument:
    kind: str
    filename: str
    content_type: str
    data: bytes
    text: str


_STORED_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt"}


def _upload_check(*, kind: str, file: File, max_bytes: int) -> _CheckedDocument:
    """Read, type-check and extract one document; stores nothing."""
    if kind not in Upload.Kind.values:
        raise InvalidInput(f"Unknown upload kind {kind!r}.", field=kind)
    filename = _clean_filename(file.name or "")
    too_large = TooLargeError(
        f"The {kind} file is larger than {max_bytes // (1024 * 1024)} MB.",
        field=kind,
    )
    if file.size is not None and file.size > max_bytes:
        raise too_large
    file.seek(0)
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large
    try:
        document = extract_text(data, filename)
    except UnsupportedFileType as exc:
        raise UnsupportedTypeError(exc.message, field=kind) from exc
    except DocumentTooLarge as exc:
        raise TooLargeError(exc.message, field=kind) from exc
    except ExtractionError as exc:
        raise InvalidInput(exc.message, field=kind) from exc
    return _CheckedDocument(
        kind=kind,
        filename=filename,
        content_type=document.content_type,
        data=data,
        text=document.text,
    )


def _upload_build(*, owner: Any, document: _CheckedDocument) -> Upload:
    """An unsaved Upload whose file is already in storage, under a generated name."""
    upload = Upload(
        kind=document.kind,
        original_filename=document.filename,
        content_type=document.content_type,
        size_bytes=len(document.data),
        sha256=hashlib.sha256(document.data).hexdigest(),
        text=document.text,
        owner=owner,
    )
    extension = _STORED_EXTENSIONS.get(document.content_type, ".docx")
    upload.file.save(
        f"{upload.id.hex}{extension}", ContentFile(document.data), save=False
    )
    return upload


def _uploads_store(*, owner: Any, documents: list[_CheckedDocument]) -> list[Upload]:
    """Store files and rows together: on any failure, no file is left behind."""
    uploads: list[Upload] = []
    try:
        for document in documents:
            uploads.append(_upload_build(owner=owner, document=document))
        with transaction.atomic():
            for upload in uploads:
                upload.save()
    except BaseException:
        for upload in uploads:
            upload.file.delete(save=False)
        raise
    return uploads


def upload_create(*, owner: Any, kind: str, file: File, max_bytes: int) -> Upload:
    """Check, extract and store one uploaded document.

    The type is decided from the content and must match the extension; the
    stored file gets a generated name, never the client's.
    """
    document = _upload_check(kind=kind, file=file, max_bytes=max_bytes)
    (upload,) = _uploads_store(owner=owner, documents=[document])
    return upload


def upload_pair_create(
    *, owner: Any, cv: File, project: File, max_bytes: int
) -> tuple[Upload, Upload]:
    """Check both documents, then store both, or neither when one is refused."""
    documents = [
        _upload_check(kind=Upload.Kind.CV.value, file=cv, max_bytes=max_bytes),
        _upload_check(
            kind=Upload.Kind.PROJECT.value, file=project, max_bytes=max_bytes
        ),
    ]
    cv_upload, project_upload = _uploads_store(owner=owner, documents=documents)
    return cv_upload, project_upload


# --- Creating and re-running jobs ------------------------------------------------

OVERRIDE_LIMITS = {
    "job_description": 5000,
    "study_case_brief": 5000,
    "scoring_rubric": 10000,
}


def request_fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _owned_uploads(
    *, owner: Any, cv_id: uuid.UUID, project_id: uuid.UUID
) -> tuple[Upload, Upload]:
    uploads = uploads_get_for_user(upload_ids=[cv_id, project_id], user=owner)
    return (
        _checked_upload(uploads.get(cv_id), upload_id=cv_id, kind="cv", field="cv_id"),
        _checked_upload(
            uploads.get(project_id),
            upload_id=project_id,
            kind="project",
            field="project_id",
        ),
    )


def _checked_upload(
    upload: Upload | None, *, upload_id: uuid.UUID, kind: str, field: str
) -> Upload:
    if upload is None:
        raise NotFoundError(f"No upload with id {upload_id}.", field=field)
    if upload.kind != kind:
        raise InvalidInput(
            f"{field} must be the id of a {kind} upload, not a {upload.kind} upload.",
            field=field,
        )
    return upload


def evaluation_create(
    *,
    owner: Any,
    cv_id: uuid.UUID,
    project_id: uuid.UUID,
    job_title: str | None = None,
    opening: JobOpening | None = None,
    job_description: str = "",
    study_case_brief: str = "",
    scoring_rubric: str = "",
    idempotency_key: str | None = None,
    request_id: str = "",
) -> tuple[Evaluation, bool]:
    """Create a queued job and publish it after the commit.

    Returns the job and whether it was created: with an `idempotency_key`
    already used for the same request, the earlier job is returned; the same
    key with a different request is a conflict. Concurrent duplicates are
    settled by the database's unique constraint. The opening is `opening`
    when given, else the one titled `job_title`, else the default one.
    """
    overrides = {
        "job_description": job_description,
        "study_case_brief": study_case_brief,
        "scoring_rubric": scoring_rubric,
    }
    for field, limit in OVERRIDE_LIMITS.items():
        if len(overrides[field]) > limit:
            raise InvalidInput(
                f"{field} is longer than {limit} characters.", field=field
            )
    fingerprint = request_fingerprint(
        {
            "cv_id": str(cv_id),
            "project_id": str(project_id),
            "job_title": job_title or "",
            "opening": opening.pk if opening is not None else "",
            **overrides,
        }
    )
    if idempotency_key:
        existing = _existing_for_key(owner, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False

    cv, project = _owned_uploads(owner=owner, cv_id=cv_id, project_id=project_id)
    if opening is None:
        opening = opening_get(title=job_title)
    if opening is None:
        raise InvalidInput(
            f"No job opening titled {job_title!r}."
            if job_title
            else "No default job opening is configured.",
            field="job_title",
        )
    # One INSERT is atomic on its own; outside a transaction the publish
    # follows its commit at once (inside one, after that transaction commits).
    try:
        evaluation = Evaluation.objects.create(
            owner=owner,
            cv=cv,
            project=project,
            opening=opening,
            job_description_override=job_description,
            study_case_brief_override=study_case_brief,
            scoring_rubric_override=scoring_rubric,
            idempotency_key=idempotency_key or None,
            request_fingerprint=fingerprint,
            request_id=request_id[:128],
        )
    except IntegrityError:
        if not idempotency_key:
            raise
        # Lost a race with a concurrent request using the same key.
        existing = _existing_for_key(owner, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing, False
    evaluation_enqueue(evaluation_id=evaluation.id)
    return evaluation, True


def _existing_for_key(
    owner: Any, idempotency_key: str, fingerprint: str
) -> Evaluation | None:
    existing = Evaluation.objects.filter(
        owner=owner, idempotency_key=idempotency_key
    ).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was already used with a different request.",
            field="Idempotency-Key",
        )
    return existing


def evaluation_enqueue(*, evaluation_id: uuid.UUID | str) -> None:
    """Publish the job once the surrounding transaction commits."""
    from evaluations.tasks import evaluate

    evaluate.enqueue(evaluation_id=str(evaluation_id))


@transaction.atomic
def evaluation_rerun(*, evaluation_id: uuid.UUID | str) -> bool:
    """`failed -> queued` and publish again; False when the job was not failed."""
    if not evaluation_requeue(evaluation_id=evaluation_id):
        return False
    evaluation_enqueue(evaluation_id=evaluation_id)
    return True


def evaluation_rerun_failed(*, limit: int | None = None) -> int:
    ids = (
        Evaluation.objects.filter(status=Evaluation.Status.FAILED)
        .order_by("created_at")
        .values_list("id", flat=True)
    )
    if limit is not None:
        ids = ids[:limit]
    return sum(evaluation_rerun(evaluation_id=evaluation_id) for evaluation_id in ids)


def evaluation_republish_stale(older_than: timedelta) -> int:
    """The reconciler: publish jobs still `queued` after `older_than`.

    Registered in `QUEUE_RECONCILERS`. Stamps `published_at` so a job is not
    re-published again before another `older_than` has passed.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        stale = list(
            Evaluation.objects.select_for_update(skip_locked=True)
            .filter(status=Evaluation.Status.QUEUED)
            .filter(
                Q(published_at__isnull=True, created_at__lt=cutoff)
                | Q(published_at__lt=cutoff)
            )
            .order_by("created_at")
            .values_list("id", flat=True)[:1000]
        )
        if stale:
            Evaluation.objects.filter(id__in=stale).update(published_at=timezone.now())
            for evaluation_id in stale:
                evaluation_enqueue(evaluation_id=evaluation_id)
    return len(stale)
