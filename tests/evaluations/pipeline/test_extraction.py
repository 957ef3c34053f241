from __future__ import annotations

import io
import random
import zipfile

import docx
import pytest
from fpdf import FPDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader, PdfWriter

from evaluations.pipeline import extraction
from evaluations.pipeline.extraction import (
    DOCX,
    PDF,
    TEXT,
    CorruptDocument,
    DocumentTooLarge,
    EncryptedDocument,
    ExtractionError,
    NoExtractableText,
    UnsupportedFileType,
    extract_text,
    normalise_text,
)

# --- Document builders -------------------------------------------------------


def make_pdf(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def png_bytes(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def encrypt(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


CV_PAGES = [
    "Aisha Rahman - Senior Backend Engineer\nPython, Go, PostgreSQL, Kafka.",
    "Experience\nLed a team of five engineers building an LLM evaluation service.",
    "Education\nB.Sc. Computer Science, 2017.",
]

# --- PDF ---------------------------------------------------------------------


def test_multi_page_pdf_text_comes_out_in_page_order() -> None:
    document = extract_text(make_pdf(CV_PAGES), "cv.pdf")
    assert document.content_type == PDF
    assert document.page_count == 3
    text = document.text
    assert "Python, Go, PostgreSQL, Kafka." in text
    assert text.index("Aisha") < text.index("Led a team") < text.index("Education")
    assert "\n\n\n" not in text
    assert text == text.strip()


def test_twenty_page_pdf_extracts() -> None:
    pages = [f"Page {n}: " + "Distributed systems and queues. " * 40 for n in range(20)]
    document = extract_text(make_pdf(pages), "report.pdf")
    assert document.page_count == 20
    assert "Page 0:" in document.text
    assert "Page 19:" in document.text


def test_corrupt_pdf_is_rejected() -> None:
    garbage = random.Random(7).randbytes(4000)
    data = b"%PDF-1.7\n" + garbage + b"\n%%EOF\n"
    with pytest.raises(CorruptDocument):
        extract_text(data, "cv.pdf")


def test_truncated_pdf_is_rejected() -> None:
    data = make_pdf(CV_PAGES)
    with pytest.raises(CorruptDocument, match="incomplete"):
        extract_text(data[: len(data) // 2], "cv.pdf")


def test_pdf_with_a_user_password_is_rejected() -> None:
    data = encrypt(make_pdf(CV_PAGES), "secret", "owner")
    with pytest.raises(EncryptedDocument) as caught:
        extract_text(data, "cv.pdf")
    assert caught.value.code == "encrypted_document"
    assert "password" in caught.value.message


def test_pdf_restricted_only_by_an_owner_password_is_read() -> None:
    data = encrypt(make_pdf(CV_PAGES), "", "owner")
    assert "Kafka" in extract_text(data, "cv.pdf").text


def test_image_only_pdf_has_no_extractable_text() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.image(Image.open(io.BytesIO(png_bytes())), x=10, y=10, w=100)
    with pytest.raises(NoExtractableText, match="scanned"):
        extract_text(bytes(pdf.output()), "scan.pdf")


def test_pdf_page_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction, "MAX_PDF_PAGES", 2)
    with pytest.raises(DocumentTooLarge, match="3 pages"):
        extract_text(make_pdf(CV_PAGES), "cv.pdf")


def test_extracted_text_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction, "MAX_TEXT_CHARS", 100)
    with pytest.raises(DocumentTooLarge):
        extract_text(make_pdf(CV_PAGES), "cv.pdf")
    with pytest.raises(DocumentTooLarge):
        extract_text(b"word " * 100, "cv.txt")


# --- DOCX --------------------------------------------------------------------


def test_docx_paragraphs_and_table_cells_are_extracted_in_order() -> None:
    data = make_docx(
        ["Budi Santoso", "Frontend Developer"],
        [["Skills", "React, TypeScript"], ["Languages", "Bahasa, English"]],
    )
    document = extract_text(data, "cv.docx")
    assert document.content_type == DOCX
    assert document.page_count is None
    assert document.text == (
        "Budi Santoso\nFrontend Developer\n"
        "Skills | React, TypeScript\nLanguages | Bahasa, English"
    )


def test_docx_merged_and_nested_cells_are_read_once() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Experience"
    table.cell(1, 0).text = "2019 - 2024"
    inner = table.cell(1, 1).add_table(rows=1, cols=1)
    inner.cell(0, 0).text = "Kafka platform team"
    buffer = io.BytesIO()
    document.save(buffer)
    text = extract_text(buffer.getvalue(), "cv.docx").text
    assert text.count("Experience") == 1
    assert "2019 - 2024" in text
    assert "Kafka platform team" in text


def test_truncated_docx_is_corrupt() -> None:
    data = make_docx(["Hello"])
    with pytest.raises(CorruptDocument):
        extract_text(data[: len(data) // 2], "cv.docx")


def test_docx_with_broken_xml_is_corrupt() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("word/document.xml", "<w:document><unclosed>")
    with pytest.raises(CorruptDocument):
        extract_text(buffer.getvalue(), "cv.docx")


def _zip_with_zeros(name: str, megabytes: int) -> bytes:
    # Streamed in 1 MB writes so building the bomb needs no memory to speak of.
    buffer = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
    ) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(name, "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(chunk)
    return buffer.getvalue()


def test_docx_decompression_bomb_is_refused_before_parsing() -> None:
    data = _zip_with_zeros("word/document.xml", 300)
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(DocumentTooLarge):
        extract_text(data, "cv.docx")


def test_docx_member_with_an_extreme_compression_ratio_is_refused() -> None:
    # Under the total limit, but 2 MB of zeros compresses about 1000:1.
    data = _zip_with_zeros("word/media/filler.bin", 2)
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(DocumentTooLarge):
        extract_text(buffer.getvalue(), "cv.docx")


# --- Plain text --------------------------------------------------------------


def test_utf8_text() -> None:
    document = extract_text("Résumé: Zoë Müller\nPython ✓".encode(), "cv.txt")
    assert document.content_type == TEXT
    assert document.text == "Résumé: Zoë Müller\nPython ✓"


def test_utf8_with_bom() -> None:
    data = b"\xef\xbb\xbf" + "Résumé\nKafka".encode()
    assert extract_text(data, "cv.md").text == "Résumé\nKafka"


def test_utf16_with_bom() -> None:
    data = "Résumé\r\nKafka and Go".encode("utf-16")
    assert extract_text(data, "cv.txt").text == "Résumé\nKafka and Go"


def test_latin1_text() -> None:
    text = "Curriculum vitae: José Peña, Zürich. Français, Español."
    assert extract_text(text.encode("latin-1"), "cv.txt").text == text


def test_windows_1252_text() -> None:
    text = "\u201cBuilt APIs\u201d \u2013 Django \u2022 PostgreSQL"
    assert extract_text(text.encode("cp1252"), "notes").text == text


def test_control_characters_are_removed_and_whitespace_normalised() -> None:
    raw = (
        "Name:\t\tAisha \x07Rahman\x1b\r\n"
        "Skills:   Python,\u00a0Go\x0bKafka\r\n\r\n\r\n\r\n"
        "   Experience\u200b: six years\x7f   \n\n\n"
    )
    assert extract_text(raw.encode(), "cv.txt").text == (
        "Name: Aisha Rahman\nSkills: Python, Go\nKafka\n\nExperience: six years"
    )


def test_normalise_text_drops_nul_and_lone_surrogates() -> None:
    assert normalise_text("a\x00b\ud800c  \n\n\n\nd") == "abc\n\nd"


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\t \r\n"])
@pytest.mark.parametrize("filename", ["cv.txt", "cv.pdf", "cv.docx", "cv"])
def test_empty_and_whitespace_only_files(data: bytes, filename: str) -> None:
    with pytest.raises(NoExtractableText):
        extract_text(data, filename)


def test_text_of_unicode_whitespace_and_invisible_characters_is_empty() -> None:
    with pytest.raises(NoExtractableText):
        extract_text("\u00a0\u2003\n\u200b\ufeff\n".encode(), "cv.txt")


def test_text_with_nul_bytes_is_binary() -> None:
    with pytest.raises(UnsupportedFileType):
        extract_text(b"hello\x00world" * 10, "cv.txt")


def test_control_heavy_bytes_are_binary() -> None:
    with pytest.raises(UnsupportedFileType):
        extract_text(bytes(range(1, 32)) * 20 + b"some text", "cv.txt")


# --- Type detection ----------------------------------------------------------

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512)
EXECUTABLE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + bytes(48)
    + b"This program cannot be run in DOS mode.\r\r\n$"
    + bytes(64)
)


def _plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (OLE2, "cv.doc", "Legacy Word"),
        (OLE2, "cv.docx", "Legacy Word"),
        (EXECUTABLE, "cv.pdf", "Executable"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "cv.pdf", "Executable"),
        (png_bytes(), "cv.docx", "Images"),
        (_jpeg(), "cv.pdf", "Images"),
        (_gif(), "cv.txt", "Images"),
        (_plain_zip(), "cv.docx", "ZIP archives"),
        (b"PK\x03\x04" + bytes(30), "cv.zip", "archive could not be read"),
        (b"{\\rtf1\\ansi Hello}", "cv.txt", "Rich Text"),
        (make_pdf(CV_PAGES), "cv.docx", "ends in .docx but its content is a PDF"),
        (make_docx(["Hi"]), "cv.pdf", "content is a Word (DOCX) document"),
        (b"Plain CV text", "cv.pdf", "ends in .pdf but its content is text"),
        (b"Plain CV text", "cv.exe", "Files ending in .exe are not supported"),
        (b"Plain CV text", "cv.doc", "Files ending in .doc are not supported"),
    ],
)
def test_unsupported_types_are_refused(
    data: bytes, filename: str, message: str
) -> None:
    with pytest.raises(UnsupportedFileType) as caught:
        extract_text(data, filename)
    assert caught.value.code == "unsupported_media_type"
    assert message in caught.value.message


def test_password_protected_docx_is_reported_as_encrypted() -> None:
    data = OLE2 + "EncryptedPackage".encode("utf-16-le") + bytes(64)
    with pytest.raises(EncryptedDocument):
        extract_text(data, "cv.docx")


@pytest.mark.parametrize(
    "filename", ["cv.PDF", "C:\\fakepath\\My CV.pdf", "uploads/2024/cv.pdf", "cv"]
)
def test_extension_is_read_from_the_last_path_component(filename: str) -> None:
    assert extract_text(make_pdf(CV_PAGES), filename).content_type == PDF


def test_text_named_markdown_or_without_extension_is_accepted() -> None:
    assert extract_text(b"# CV\n\nPython", "cv.md").text == "# CV\n\nPython"
    assert extract_text(b"Python", "README").content_type == TEXT


def test_text_that_starts_with_mz_is_still_text() -> None:
    assert extract_text(b"MZ Logistics - CV of Ana", "cv.txt").text.startswith("MZ")


# --- Robustness --------------------------------------------------------------

_ERROR_CODES = {
    "unsupported_media_type",
    "corrupt_document",
    "encrypted_document",
    "no_extractable_text",
    "document_too_large",
}
_VALID_PDF = make_pdf(CV_PAGES)
_VALID_DOCX = make_docx(["Hello", "World"], [["a", "b"]])


def _assert_clean_failure(error: ExtractionError) -> None:
    assert error.code in _ERROR_CODES
    lowered = error.message.lower()
    for internal in ("pypdf", "zipfile", "lxml", "traceback", "/tmp", "errno"):
        assert internal not in lowered


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=2048),
    filename=st.sampled_from(["cv.pdf", "cv.docx", "cv.txt", "cv", "cv.md"]),
)
def test_arbitrary_bytes_never_raise_anything_else(data: bytes, filename: str) -> None:
    try:
        extract_text(data, filename)
    except ExtractionError as error:
        _assert_clean_failure(error)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from([("cv.pdf", _VALID_PDF), ("cv.docx", _VALID_DOCX)]),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    ),
    cut=st.none() | st.floats(min_value=0.05, max_value=1.0),
)
def test_damaged_documents_never_raise_anything_else(
    source: tuple[str, bytes], flips: list[tuple[int, int]], cut: float | None
) -> None:
    filename, original = source
    data = bytearray(original)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: max(1, int(len(data) * cut))]
    try:
        extract_text(bytes(data), filename)
    except ExtractionError as error:
        _assert_clean_failure(error)
