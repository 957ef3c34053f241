"""Size limits enforced while a multipart upload is being read.

Django parses a multipart body chunk by chunk and passes each file's chunks
through a chain of upload handlers. `FileSizeLimitHandler` goes first in that
chain and stops the upload as soon as one file passes the limit, so an
oversized file is never read to its end, held in memory or written to disk.
A body whose declared length could not possibly fit is refused before a
single byte is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser

from evaluations.errors import PayloadTooLarge

# Room for the multipart boundaries, part headers and small form fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
FILES_PER_UPLOAD = 2
_MB = 1024 * 1024


def upload_limit_bytes() -> int:
    """The per-file limit, `MAX_UPLOAD_MB`."""
    return settings.MAX_UPLOAD_MB * _MB


def upload_body_limit_bytes(file_limit: int) -> int:
    """The largest multipart body that can hold two files within the limit."""
    return FILES_PER_UPLOAD * file_limit + MULTIPART_OVERHEAD_BYTES


def _describe(limit: int) -> str:
    return f"{limit // _MB} MB" if limit >= _MB else f"{limit} bytes"


class FileSizeLimitHandler(FileUploadHandler):
    """Stops the upload once any one file passes `max_bytes`.

    It passes every chunk on to the next handlers unchanged and builds no file
    itself; `exceeded_field` names the file that was too large.
    """

    def __init__(self, max_bytes: int, request: Any = None) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.exceeded_field: str | None = None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.max_bytes:
            self.exceeded_field = self.field_name
            # connection_reset: do not read (and throw away) the rest.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class _ClosingDelimiterWatcher:
    """Reads through to a stream and notes whether the closing delimiter passed.

    Django's parser quietly drops a part that a body ending early (a dropped
    connection, a truncated request) cut off, so the client would be told that
    a file is missing when the real fault is an incomplete body.
    """

    def __init__(self, stream: Any, boundary: bytes) -> None:
        self._stream = stream
        self._delimiter = b"--" + boundary + b"--"
        self._tail = b""
        self.complete = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data and not self.complete:
            window = self._tail + data
            self.complete = self._delimiter in window
            self._tail = window[-(len(self._delimiter) - 1) :]
        return data


class UploadParser(MultiPartParser):
    """`multipart/form-data` with the per-file and per-body size limits."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles:
        parser_context = parser_context or {}
        request = parser_context["request"]
        file_limit = upload_limit_bytes()
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        if content_length > upload_body_limit_bytes(file_limit):
            raise PayloadTooLarge(
                "The request body is too large: each file may be at most "
                f"{_describe(file_limit)}."
            )

        limiter = FileSizeLimitHandler(file_limit, request)
        _, options = parse_header_parameters(media_type or "")
        watcher = _ClosingDelimiterWatcher(
            stream, options.get("boundary", "").encode("ascii", "replace")
        )
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = DjangoMultiPartParser(
                meta,
                cast(Any, watcher),
                [limiter, *request.upload_handlers],
                parser_context.get("encoding", settings.DEFAULT_CHARSET),
            )
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"The multipart body is malformed: {exc}") from exc
        if limiter.exceeded_field is not None:
            raise PayloadTooLarge(
                f"The {limiter.exceeded_field} file is larger than "
                f"{_describe(file_limit)}.",
                field=limiter.exceeded_field,
            )
        if not watcher.complete:
            raise ParseError("The multipart body is incomplete.")
        return DataAndFiles(data, files)
