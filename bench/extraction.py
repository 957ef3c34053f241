"""Text extraction time for a generated 20-page PDF (`python -m bench.extraction`)."""

from __future__ import annotations

import statistics
import time

from fpdf import FPDF

from evaluations.pipeline.extraction import extract_text

PAGES = 20
LINES_PER_PAGE = 40


def twenty_page_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=10)
    for page in range(PAGES):
        pdf.add_page()
        for line in range(LINES_PER_PAGE):
            pdf.cell(
                0,
                6,
                f"Page {page + 1}, line {line + 1}: designed and ran backend "
                "services in Python and Go with Kafka and PostgreSQL.",
                new_x="LMARGIN",
                new_y="NEXT",
            )
    return bytes(pdf.output())


def main(runs: int = 7) -> None:
    data = twenty_page_pdf()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        document = extract_text(data, "report.pdf")
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"{document.page_count} pages, {len(document.text)} characters: "
        f"median {statistics.median(timings):.1f} ms "
        f"(min {min(timings):.1f}, max {max(timings):.1f}) over {runs} runs"
    )


if __name__ == "__main__":
    main()
