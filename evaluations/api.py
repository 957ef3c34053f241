"""The REST API, v1: upload two documents, start an evaluation, poll its result.

One view per operation: validate the input, call a service or a selector,
shape the response. Errors of every kind leave through
`evaluations.errors.api_exception_handler` in the one envelope.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluations.errors import ERROR_CODES, InvalidArgument, NotFound
from evaluations.models import Evaluation
from evaluations.selectors import evaluation_get_for_user
from evaluations.services import OVERRIDE_LIMITS, evaluation_create, upload_pair_create
from evaluations.uploads import UploadParser, upload_limit_bytes

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NO_NUL = RegexValidator(r"^[^\x00]*$", message="Null characters are not allowed.")
MAX_JOB_TITLE_LENGTH = 200


# --- Fields ----------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: numbers, booleans and lists are refused.

    DRF would turn `42` into `"42"`; a client sending the wrong type has a bug
    worth reporting. Lone surrogates (valid in JSON, not in UTF-8) are refused
    too: they cannot be stored.
    """

    default_error_messages = {
        "invalid": "Must be a string.",
        "surrogate": "Must be valid Unicode text.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The same rule as DRF's own, but as a pattern the schema can publish.
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, ProhibitNullCharactersValidator)
        ]
        self.validators.append(_NO_NUL)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if _LONE_SURROGATE.search(data):
            self.fail("surrogate")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a string (DRF would also accept a JSON integer)."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=type(data).__name__)
        return super().to_internal_value(data)


class JSONBodyParser(JSONParser):
    """DRF's JSON parser that also refuses bodies nested too deeply to decode."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


# --- Shared response shapes ---------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODES)
    message = serializers.CharField()
    details = serializers.DictField(
        help_text='Extra facts, e.g. {"field": "cv"} for the input at fault.'
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


COMMON_ERRORS = {
    401: _error("Missing or invalid API token (UNAUTHENTICATED)."),
    429: _error("Too many requests (RATE_LIMITED); see the Retry-After header."),
    500: _error("Unexpected server error (INTERNAL); details.request_id."),
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before retrying.",
)


# --- POST /v1/upload --------------------------------------------------------------


class UploadView(APIView):
    parser_classes = [UploadParser]

    class InputSerializer(serializers.Serializer):
        cv = serializers.FileField(help_text="The candidate's CV (PDF, DOCX or text).")
        project = serializers.FileField(
            help_text="The candidate's project report (PDF, DOCX or text)."
        )

        class Meta:
            ref_name = "Upload"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            getlist = getattr(self.initial_data, "getlist", None)
            for field in ("cv", "project"):
                if getlist is not None and len(getlist(field)) > 1:
                    raise serializers.ValidationError({field: "Send one file only."})
            return attrs

    class OutputSerializer(serializers.Serializer):
        cv_id = serializers.UUIDField()
        project_id = serializers.UUIDField()

        class Meta:
            ref_name = "UploadCreated"

    @extend_schema(
        operation_id="upload_create",
        summary="Upload a CV and a project report",
        description="Both files are required. The type is decided from the "
        "content (PDF, DOCX or plain text) and must agree with the file name; "
        "each file may be at most MAX_UPLOAD_MB (10 MB by default).",
        request=InputSerializer,
        parameters=[RETRY_AFTER],
        responses={
            201: OpenApiResponse(
                OutputSerializer, description="Both documents are stored."
            ),
            400: _error(
                "A file is missing, empty, corrupt, encrypted or has no text "
                '(INVALID_ARGUMENT, details.field: "cv" or "project").'
            ),
            413: _error("A file or the whole body is too large (PAYLOAD_TOO_LARGE)."),
            415: _error(
                "Unsupported file type, a type that contradicts the file name, or "
                "a body that is not multipart/form-data (UNSUPPORTED_MEDIA_TYPE)."
            ),
            **COMMON_ERRORS,
        },
        tags=["evaluations"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cv, project = upload_pair_create(
            owner=request.user,
            cv=serializer.validated_data["cv"],
            project=serializer.validated_data["project"],
            max_bytes=upload_limit_bytes(),
        )
        data = self.OutputSerializer({"cv_id": cv.id, "project_id": project.id}).data
        return Response(data, status=status.HTTP_201_CREATED)


# --- POST /v1/evaluate ---------------------------------------------------------------


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header: absent, or 1-255 printable ASCII characters."""
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidArgument(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            field=IDEMPOTENCY_KEY_HEADER,
        )
    return key


class EvaluateView(APIView):
    parser_classes = [JSONBodyParser]

    class InputSerializer(serializers.Serializer):
        cv_id = StrictUUIDField(help_text="The id of a CV upload.")
        project_id = StrictUUIDField(help_text="The id of a project upload.")
        job_title = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=MAX_JOB_TITLE_LENGTH,
            help_text="The job opening to evaluate against; the default one if absent.",
        )
        job_description = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=OVERRIDE_LIMITS["job_description"],
            help_text="Replaces the opening's job description.",
        )
        study_case_brief = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=OVERRIDE_LIMITS["study_case_brief"],
            help_text="Replaces the opening's case-study brief.",
        )
        scoring_rubric = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=OVERRIDE_LIMITS["scoring_rubric"],
            help_text="Replaces the opening's scoring rubric text.",
        )

        class Meta:
            ref_name = "Evaluate"

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.ChoiceField(choices=Evaluation.Status.choices)

        class Meta:
            ref_name = "EvaluationAccepted"

    @extend_schema(
        operation_id="evaluate_create",
        summary="Start an evaluation",
        description="Queues an evaluation of a CV and a project report. With an "
        "Idempotency-Key, repeating the same request returns the same job (200); "
        "the same key with a different request is refused (409).",
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_KEY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="Makes retries safe: 1-255 printable ASCII characters, "
                "unique per request you mean to make.",
                pattern=r"^[\x20-\x7e]{1,255}$",
            ),
            OpenApiParameter(
                "X-Request-Id",
                str,
                OpenApiParameter.HEADER,
                description="Your id for this request, stored with the job and "
                "echoed back; one is generated when absent or not of the form "
                "[A-Za-z0-9._:-]{1,128}.",
            ),
            RETRY_AFTER,
        ],
        responses={
            202: OpenApiResponse(
                OutputSerializer, description="The job is queued; poll its result."
            ),
            200: OpenApiResponse(
                OutputSerializer,
                description="A repeated request with the same Idempotency-Key: the "
                "job it created, with its current status.",
            ),
            400: _error(
                "Invalid input: a missing or malformed id, an id of the wrong kind, "
                "an unknown job_title, a text over its limit or a malformed "
                "Idempotency-Key (INVALID_ARGUMENT, details.field)."
            ),
            404: _error("No such upload (NOT_FOUND, details.field)."),
            409: _error(
                "The Idempotency-Key was used with a different request (CONFLICT)."
            ),
            413: _error("The JSON body is too large (PAYLOAD_TOO_LARGE)."),
            415: _error("The body is not JSON (UNSUPPORTED_MEDIA_TYPE)."),
            **COMMON_ERRORS,
        },
        tags=["evaluations"],
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        evaluation, created = evaluation_create(
            owner=request.user,
            idempotency_key=key,
            request_id=getattr(request, "request_id", ""),
            **serializer.validated_data,
        )
        data = self.OutputSerializer(evaluation).data
        return Response(data, status=202 if created else 200)


# --- GET /v1/result/{id} --------------------------------------------------------------


class _CriterionScoreSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    weight = serializers.CharField(help_text="The criterion's weight, e.g. 0.25.")
    score = serializers.IntegerField(min_value=1, max_value=5)
    rationale = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "CriterionScore"


class _BreakdownSerializer(serializers.Serializer):
    cv = _CriterionScoreSerializer(many=True)
    project = _CriterionScoreSerializer(many=True)

    class Meta:
        ref_name = "Breakdown"


class _ScoresSerializer(serializers.Serializer):
    cv_match_rate = serializers.FloatField(min_value=0, max_value=1)
    cv_feedback = serializers.CharField()
    project_score = serializers.FloatField(min_value=1, max_value=10)
    project_feedback = serializers.CharField()
    overall_summary = serializers.CharField()
    breakdown = _BreakdownSerializer()

    class Meta:
        ref_name = "EvaluationScores"


class _JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error_message")

    class Meta:
        ref_name = "EvaluationError"


def evaluation_etag(evaluation: Evaluation) -> str:
    """A strong ETag that changes whenever the result body can change."""
    finished = evaluation.finished_at.isoformat() if evaluation.finished_at else ""
    version = f"{evaluation.id}:{evaluation.status}:{finished}"
    return f'"{hashlib.sha256(version.encode()).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` semantics: weak comparison, `*` matches anything."""
    if not if_none_match:
        return False
    etags = parse_etags(if_none_match)
    return "*" in etags or etag in {tag.removeprefix("W/") for tag in etags}


def _evaluation_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No evaluation with this id.") from None


class ResultView(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.ChoiceField(choices=Evaluation.Status.choices)
        result = _ScoresSerializer(
            source="*", required=False, help_text="Present when completed."
        )
        error = _JobErrorSerializer(
            source="*", required=False, help_text="Present when failed."
        )

        class Meta:
            ref_name = "EvaluationResult"

        def to_representation(self, instance: Evaluation) -> dict[str, Any]:
            shown = {"id", "status"}
            if instance.status == Evaluation.Status.COMPLETED:
                shown.add("result")
            elif instance.status == Evaluation.Status.FAILED:
                shown.add("error")
            return {
                name: field.to_representation(field.get_attribute(instance))
                for name, field in self.fields.items()
                if name in shown
            }

    @extend_schema(
        operation_id="result_retrieve",
        summary="Get an evaluation's status and result",
        description="Poll until the status is completed or failed. Send the ETag "
        "back in If-None-Match to get 304 while nothing has changed.",
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Job id."
            ),
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="An ETag from an earlier response.",
            ),
            OpenApiParameter(
                "ETag",
                str,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="The version of this result.",
            ),
            RETRY_AFTER,
        ],
        responses={
            200: OpenApiResponse(
                OutputSerializer,
                description="The job's status; with `result` once completed, or "
                "`error` once failed.",
            ),
            304: OpenApiResponse(description="Not modified since the given ETag."),
            404: _error("No evaluation with this id that you can see (NOT_FOUND)."),
            **COMMON_ERRORS,
        },
        tags=["evaluations"],
    )
    def get(self, request: Request, id: str) -> Response:
        evaluation = evaluation_get_for_user(
            evaluation_id=_evaluation_id(id), user=request.user
        )
        if evaluation is None:
            raise NotFound("No evaluation with this id.")
        headers = {
            "ETag": evaluation_etag(evaluation),
            "Cache-Control": "private, no-cache",
        }
        if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(self.OutputSerializer(evaluation).data, headers=headers)
