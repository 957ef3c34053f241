"""Text extraction from uploaded CVs and project reports.

The file type is decided from the bytes, never from the name alone, and the
name's extension must agree with it. Every failure is an `ExtractionError`
subclass with a stable `code` and a message that is safe to show to the person
who uploaded the file: parser exceptions are wrapped, never leaked.

Memory stays bounded whatever the input: DOCX archives are measured from their
declared sizes before anything is decompressed, PDFs are capped in pages, and
the extracted text is capped in length.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import docx
import pypdf
from docx.table import Table
from docx.text.paragraph import Paragraph
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

logger = logging.getLogger(__name__)
# pypdf's warnings quote fragments of the document they fail on, and a CV's
# content must never reach the logs. Failures are reported by this module.
logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)

PDF: Final = "application/pdf"
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT: Final = "text/plain"

# The API refuses uploads far smaller than this; the cap only protects callers
# that hand us bytes from elsewhere.
MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
MAX_PDF_PAGES: Final = 500
MAX_TEXT_CHARS: Final = 2_000_000
MAX_DOCX_UNCOMPRESSED_BYTES: Final = 50 * 1024 * 1024
MAX_DOCX_MEMBERS: Final = 5_000
MAX_COMPRESSION_RATIO: Final = 100
# Small members compress extremely well (empty XML parts, repeated styles), so
# the ratio is only judged where it could add up to something dangerous.
RATIO_CHECK_MIN_BYTES: Final = 1024 * 1024
MAX_TABLE_NESTING: Final = 8
# Share of control characters above which bytes are taken to be binary.
MAX_CONTROL_RATIO: Final = 0.10

TEXT_EXTENSIONS: Final = frozenset({"", ".txt", ".text", ".md", ".markdown"})
_EXTENSIONS_BY_TYPE: Final = {
    PDF: frozenset({"", ".pdf"}),
    DOCX: frozenset({"", ".docx"}),
    TEXT: TEXT_EXTENSIONS,
}
_TYPE_LABELS: Final = {PDF: "a PDF", DOCX: "a Word (DOCX) document", TEXT: "text"}
_SUPPORTED_HINT: Final = "Please upload a PDF, DOCX or plain-text file."


class ExtractionError(Exception):
    """A document that cannot be turned into text; `message` is user-facing."""

    code: str = "invalid_document"
    default_message: str = "The document could not be read."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class UnsupportedFileType(ExtractionError):
    code = "unsupported_media_type"
    default_message = "This file type is not supported. " + _SUPPORTED_HINT


class CorruptDocument(ExtractionError):
    code = "corrupt_document"
    default_message = (
        "The document appears to be damaged or incomplete and could not be read."
    )


class EncryptedDocument(ExtractionError):
    code = "encrypted_document"
    default_message = (
        "The document is password-protected. Please upload a copy without a password."
    )


class NoExtractableText(ExtractionError):
    code = "no_extractable_text"
    default_message = "The document contains no text that could be extracted."


class DocumentTooLarge(ExtractionError):
    code = "document_too_large"
    default_message = "The document is too large to process."


@dataclass(frozen=True)
class ExtractedDocument:
    text: str
    content_type: str
    page_count: int | None = None


def extract_text(data: bytes, filename: str) -> ExtractedDocument:
    """Detect the type of `data`, check it against `filename` and extract text."""
    if len(data) > MAX_INPUT_BYTES:
        raise DocumentTooLarge()
    if not data.strip():
        raise NoExtractableText("The file is empty.")
    extension = file_extension(filename)
    content_type = detect_content_type(data, extension)
    _check_extension(content_type, extension)
    if content_type == PDF:
        text, page_count = _extract_pdf(data)
        return ExtractedDocument(text=text, content_type=PDF, page_count=page_count)
    if content_type == DOCX:
        return ExtractedDocument(text=_extract_docx(data), content_type=DOCX)
    return ExtractedDocument(text=_extract_plain_text(data), content_type=TEXT)


def file_extension(filename: str) -> str:
    """The lower-cased extension of the last path component, with its dot."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    _, dot, suffix = name.rpartition(".")
    if not dot or not suffix or " " in suffix:
        return ""
    return "." + suffix


# --- Detection ---------------------------------------------------------------

_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
_IMAGE_MAGICS: Final = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
_UTF32_BOMS: Final = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM: Final = b"\xef\xbb\xbf"
# Office wraps password-protected DOCX files in an OLE2 container holding a
# stream of this name, so they look like legacy .doc files at first sight.
_ENCRYPTED_PACKAGE_MARKER: Final = "EncryptedPackage".encode("utf-16-le")
_CONTROL_BYTES: Final = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])


def detect_content_type(data: bytes, extension: str = "") -> str:
    """One of PDF, DOCX or TEXT, decided from the bytes; raises otherwise."""
    head = data[:16]
    if data.lstrip(b" \t\r\n")[:5] == b"%PDF-":
        return PDF
    if head.startswith(_OLE2_MAGIC):
        if _ENCRYPTED_PACKAGE_MARKER in data:
            raise EncryptedDocument()
        raise UnsupportedFileType(
            "Legacy Word (.doc) and other Office 97-2003 files are not supported. "
            "Please save the document as DOCX or PDF."
        )
    if head.startswith(_ZIP_MAGICS):
        return _detect_zip(data, extension)
    if head.startswith(b"\x7fELF") or (head.startswith(b"MZ") and _looks_binary(data)):
        raise UnsupportedFileType(
            "Executable files are not accepted. " + _SUPPORTED_HINT
        )
    if head.startswith(_IMAGE_MAGICS) and (
        not head.startswith(b"BM") or _looks_binary(data)
    ):
        raise UnsupportedFileType(
            "Images are not accepted; text cannot be read from them. " + _SUPPORTED_HINT
        )
    if head.startswith(b"{\\rtf"):
        raise UnsupportedFileType(
            "Rich Text (RTF) files are not supported. " + _SUPPORTED_HINT
        )
    if head.startswith(_UTF32_BOMS + _UTF16_BOMS + (_UTF8_BOM,)):
        return TEXT
    if _looks_binary(data):
        raise UnsupportedFileType(
            "This file is not a document we can read. " + _SUPPORTED_HINT
        )
    return TEXT


def _detect_zip(data: bytes, extension: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except Exception as error:  # zipfile raises several types on damaged input
        if extension == ".docx":
            raise CorruptDocument() from error
        raise UnsupportedFileType(
            "This archive could not be read. " + _SUPPORTED_HINT
        ) from error
    if "word/document.xml" in names:
        return DOCX
    raise UnsupportedFileType(
        "ZIP archives and Office files other than Word documents are not "
        "supported. " + _SUPPORTED_HINT
    )


def _looks_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    return controls > len(data) * MAX_CONTROL_RATIO


def _check_extension(content_type: str, extension: str) -> None:
    if extension in _EXTENSIONS_BY_TYPE[content_type]:
        return
    known = {ext for exts in _EXTENSIONS_BY_TYPE.values() for ext in exts}
    if extension not in known:
        raise UnsupportedFileType(
            f"Files ending in {extension} are not supported. {_SUPPORTED_HINT}"
        )
    raise UnsupportedFileType(
        f"The file's name ends in {extension} but its content is "
        f"{_TYPE_LABELS[content_type]}. Please check the file and upload it again."
    )


# --- Normalisation -----------------------------------------------------------

_LINE_BREAKS: Final = {ord(c): "\n" for c in "\x0b\x0c\x85\u2028\u2029"}
_DROPPED: Final = {
    code: None
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    if code not in (0x09, 0x0A) and code not in _LINE_BREAKS
}
# Invisible characters that only get in the way of matching words: zero-width
# spaces and joiners, word joiner, byte-order marks, soft hyphens.
_INVISIBLE: Final = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_TRANSLATION: Final = {**_DROPPED, **_INVISIBLE, **_LINE_BREAKS}
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_HORIZONTAL_SPACE: Final = re.compile(r"[^\S\n]+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """Collapse whitespace and drop control characters, keeping line breaks.

    Runs of spaces and tabs become one space, lines are stripped, and at most one
    blank line separates paragraphs. NUL and lone surrogates are removed too:
    PostgreSQL cannot store the first and UTF-8 cannot encode the second.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATION)
    text = _SURROGATES.sub("", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _finish(text: str) -> str:
    text = normalise_text(text)
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentTooLarge(
            "The document contains more text than we can evaluate. Please upload a "
            "shorter version."
        )
    if not text:
        raise NoExtractableText()
    return text


# --- Plain text --------------------------------------------------------------


# Control characters that do not occur in ordinary text (tabs, line and page
# breaks do), counted to tell decoded text from decoded binary.
_UNUSUAL_CONTROLS: Final = {
    code: None
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    if code not in (0x09, 0x0A, 0x0C, 0x0D)
}


def _extract_plain_text(data: bytes) -> str:
    text = _decode(data)
    controls = len(text) - len(text.translate(_UNUSUAL_CONTROLS))
    if controls > len(text) * MAX_CONTROL_RATIO:
        raise UnsupportedFileType(
            "This file is not a document we can read. " + _SUPPORTED_HINT
        )
    return _finish(text)


def _decode(data: bytes) -> str:
    try:
        if data.startswith(_UTF32_BOMS):
            return data.decode("utf-32")
        if data.startswith(_UTF16_BOMS):
            return data.decode("utf-16")
        if data.startswith(_UTF8_BOM):
            return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorruptDocument(
            "The text file's encoding is damaged and it could not be read."
        ) from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Not UTF-8: most such files come from Windows editors. cp1252 leaves five
    # byte values undefined, and latin-1 maps every byte, so it always succeeds.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --- PDF ---------------------------------------------------------------------


def _extract_pdf(data: bytes) -> tuple[str, int]:
    # A PDF's cross-reference table sits at its end; pypdf can rebuild a missing
    # one and would silently return the first half of a truncated upload.
    if b"%%EOF" not in data[-2048:]:
        raise CorruptDocument(
            "The PDF appears to be incomplete (it may have been cut off during "
            "upload) and could not be read."
        )
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _unlock(reader)
        page_count = len(reader.pages)
        if page_count > MAX_PDF_PAGES:
            raise DocumentTooLarge(
                f"The PDF has {page_count} pages; at most {MAX_PDF_PAGES} are accepted."
            )
        text = _pdf_pages_text(reader)
    except ExtractionError:
        raise
    except LimitReachedError as error:
        raise DocumentTooLarge() from error
    except (FileNotDecryptedError, DependencyError) as error:
        raise EncryptedDocument() from error
    except Exception as error:
        # pypdf raises a wide range of exception types on malformed input.
        raise CorruptDocument() from error
    if page_count == 0:
        raise CorruptDocument("The PDF has no pages.")
    if not text:
        raise NoExtractableText(
            "The PDF contains no selectable text; it may be a scanned image. "
            "Please upload a PDF with a text layer, or a DOCX or text file."
        )
    return text, page_count


def _unlock(reader: pypdf.PdfReader) -> None:
    # Many PDFs are "protected" with an owner password only, which restricts
    # editing but lets anyone read them; those open with an empty password.
    if reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
        raise EncryptedDocument()


def _pdf_pages_text(reader: pypdf.PdfReader) -> str:
    pages: list[str] = []
    total = 0
    failed = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            page_text = normalise_text(page.extract_text() or "")
        except LimitReachedError:
            raise
        except Exception:
            # One unreadable page should not cost the candidate the whole CV.
            failed += 1
            logger.warning("pdf page %d could not be extracted", number)
            continue
        if not page_text:
            continue
        total += len(page_text) + 2
        if total > MAX_TEXT_CHARS:
            raise DocumentTooLarge(
                "The document contains more text than we can evaluate. Please "
                "upload a shorter version."
            )
        pages.append(page_text)
    if failed and not pages:
        raise CorruptDocument()
    return _finish("\n\n".join(pages)) if pages else ""


# --- DOCX --------------------------------------------------------------------


def _check_archive_budget(data: bytes) -> None:
    """Refuse decompression bombs using only the sizes the archive declares.

    `zipfile` never inflates a member past its declared size (a member that
    lies fails its CRC check instead), so judging the declared sizes bounds the
    memory python-docx can use.
    """
    too_large = DocumentTooLarge(
        "The Word document expands to more data than we accept. Please upload a "
        "smaller file or a PDF."
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as error:  # zipfile raises several types on damaged input
        raise CorruptDocument() from error
    if len(members) > MAX_DOCX_MEMBERS:
        raise too_large
    total = 0
    for member in members:
        total += member.file_size
        if total > MAX_DOCX_UNCOMPRESSED_BYTES:
            raise too_large
        if member.file_size > RATIO_CHECK_MIN_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > MAX_COMPRESSION_RATIO:
                raise too_large


def _extract_docx(data: bytes) -> str:
    _check_archive_budget(data)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document.iter_inner_content(), depth=0))
    except ExtractionError:
        raise
    except Exception as error:
        # python-docx, lxml and zipfile all raise their own types on bad input.
        raise CorruptDocument() from error
    return _finish("\n".join(blocks))


def _docx_blocks(content: Iterator[Paragraph | Table], depth: int) -> Iterator[str]:
    for block in content:
        if isinstance(block, Paragraph):
            yield block.text
        elif isinstance(block, Table) and depth < MAX_TABLE_NESTING:
            yield from _table_rows(block, depth)


def _table_rows(table: Table, depth: int) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # Merged cells are returned once per grid column they span.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cell_text = "\n".join(
                _docx_blocks(cell.iter_inner_content(), depth + 1)
            ).strip()
            if cell_text:
                cells.append(cell_text)
        yield " | ".join(cells)
