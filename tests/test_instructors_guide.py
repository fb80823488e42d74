"""docs/instructors.md's table of the labs says what the solutions grade."""

import re
from pathlib import Path

import pytest

from dlmi_utils.course.grading.lab import LabSpec
from dlmi_utils.course.notebooks import solution_notebooks

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", solution_notebooks(ROOT / "solutions"), ids=lambda p: p.stem)
def test_guide_table_row_matches_the_solution(path):
    spec = LabSpec.from_solution(path)
    row = next((line for line in GUIDE.splitlines() if line.startswith(f"| {path.name[:2]} ")),
               None)
    assert row, f"docs/instructors.md has no row for lab {path.name[:2]}"
    _, exercises, questions, _ = (cell.strip() for cell in row.strip("|").split("|"))
    assert re.findall(r"`(\w+)`", exercises) == [e.name for e in spec.exercises], row
    assert exercises.endswith(f"({sum(e.points for e in spec.exercises):g})"), row
    assert questions == (f"{len(spec.questions)} "
                         f"({sum(q.points for q in spec.questions):g})"), row
