"""The labs' prose matches their outputs: every number with a unit in a solution's markdown is
printed by a cell that nbval checks, set in a code cell, or cited from its source.

Numbers inside LaTeX (``$...$``) are mathematics, not results, and are not looked at. A
markdown number matches a printed one when the printed one rounds to it (``36 dB`` matches a
printed ``35.58``); outputs of cells tagged ``nbval-ignore-output`` or ``nbval-skip`` do not
count, since they differ from run to run (on Colab too), and nor do timings, which nbval
sanitises for the same reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from dlmi_utils.course.notebooks import NB_VERSION, solution_notebooks

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")

UNITS = r"dB|ms|s|%|x|×|px|mm"
# A number and its unit; "256 x 256" is a size, not a ratio, so "x" followed by a number is not.
NUMBER_WITH_UNIT = re.compile(
    rf"(?<![\w.\-])(\d+(?:[.,]\d+)?)\s?(?:{UNITS})(?![\w\d])(?!\s?\d)"
)
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
CODE_SPAN = re.compile(r"`[^`]*`")
TIMING_UNITS = re.compile(r"^\d+(?:\.\d+)?\s?(?:s|ms)$")
CITATION = re.compile(
    r"et al\.?|\b(?:19|20)\d\d\b|lecture|slides|paper|reported|according to|\[\d+\]|https?://",
    re.I,
)
IGNORED_TAGS = {"nbval-ignore-output", "nbval-skip"}


def _output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def _numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text.replace(",", "")))


def _matches(claim: str, printed: set[str], code: set[str]) -> bool:
    """``claim`` is printed (possibly with more decimals) or set in code."""
    if claim in code or claim in printed:
        return True
    decimals = len(claim.split(".")[1]) if "." in claim else 0
    value = float(claim)
    for p in printed:
        p_decimals = len(p.split(".")[1]) if "." in p else 0
        if p_decimals >= decimals and round(float(p), decimals) == value:
            return True
    return False


def _sentences(text: str) -> list[str]:
    """Sentences, paragraphs and list items; a table belongs to the sentence that introduces it."""
    text = re.sub(r"\n\s*\n(?=\|)", "\n", text)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(*])|\n\s*\n|\n[-*] ", text)


def unsupported_numbers(nb: nbformat.NotebookNode) -> list[str]:
    """Each number with a unit in the markdown that no checked output, code or citation backs."""
    printed: set[str] = set()
    code: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code |= _numbers(cell.source)
        if not IGNORED_TAGS & set(cell.metadata.get("tags", [])):
            printed |= _numbers(_output_text(cell))
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = CODE_SPAN.sub(" ", MATH.sub(" ", cell.source))
        for sentence in _sentences(text):
            if CITATION.search(sentence):
                continue
            for match in NUMBER_WITH_UNIT.finditer(sentence):
                claim = match.group(1).replace(",", "")
                if TIMING_UNITS.match(match.group(0)) or not _matches(claim, printed, code):
                    problems.append(f"cell {index}: {match.group(0)!r} in "
                                    f"{' '.join(sentence.split())[:120]!r}")
    return problems


def test_unsupported_numbers_are_found():
    nb = nbformat.v4.new_notebook()
    printed = nbformat.v4.new_code_cell("print(f'{35.58:.2f} dB')")
    printed.outputs = [nbformat.v4.new_output("stream", text="35.58 dB\n")]
    ignored = nbformat.v4.new_code_cell("print(lam)", metadata={"tags": ["nbval-ignore-output"]})
    ignored.outputs = [nbformat.v4.new_output("stream", text="lambda from 4.1 to 24.3\n")]
    nb.cells = [printed, ignored, nbformat.v4.new_markdown_cell(
        "The cascade reaches about 36 dB, or 35.58 dB. The lambdas go from 4.1 x to 24.3 x. "
        "Yang et al. report 24.49 dB. A $2 x$ zoom of a 256 x 256 crop took 3.2 s.")]
    problems = unsupported_numbers(nb)
    assert [p.split("'")[1] for p in problems] == ["4.1 x", "24.3 x", "3.2 s"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_prose_numbers_are_printed_or_cited(path):
    problems = unsupported_numbers(nbformat.read(path, as_version=NB_VERSION))
    assert not problems, (
        f"{path.name}: numbers in the prose that no checked output prints, no code cell sets "
        "and no citation backs (print them, cite them, or say it without the number):\n  "
        + "\n  ".join(problems))


def test_a_table_is_cited_by_the_sentence_that_introduces_it():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(
        "The paper's table (Schlemper et al. 2017):\n\n| method | PSNR |\n|---|---|\n"
        "| cascade | 31.0 dB |\n\nOurs:\n\n| method | PSNR |\n|---|---|\n| cascade | 35.3 dB |")]
    assert [p.split("'")[1] for p in unsupported_numbers(nb)] == ["35.3 dB"]
