"""The README stays true: every lab has its row and badge, every module it names exists."""

import re
import tomllib
from pathlib import Path

import pytest

from dlmi_utils.course import colab
from dlmi_utils.course.notebooks import solution_notebooks

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOLUTIONS = solution_notebooks(ROOT / "solutions")


def _labs_table_rows() -> list[str]:
    section = README.split("## The labs", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| [")]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_lab_has_a_row_with_its_colab_badge(solution):
    lab = f"labs/{solution.name}"
    rows = [r for r in _labs_table_rows() if f"]({lab})" in r]
    assert len(rows) == 1, f"README's labs table needs one row linking {lab}"
    assert colab.colab_url(lab) in rows[0], f"the row of {lab} needs its Colab badge"


def test_labs_table_lists_only_existing_labs_in_order():
    linked = [re.search(r"\]\((labs/[^)]+\.ipynb)\)", r)[1] for r in _labs_table_rows()]
    assert linked == [f"labs/{p.name}" for p in SOLUTIONS]
    assert all((ROOT / path).exists() for path in linked)


def test_module_table_names_modules_that_exist():
    section = README.split("## The helper package `dlmi_utils`", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"`(\w+)/?`", "\n".join(
        line.split("|")[1] for line in section.splitlines() if line.startswith("| `")))
    assert len(names) > 10
    for name in names:
        module = ROOT / "dlmi_utils" / name
        assert module.with_suffix(".py").exists() or (module / "__init__.py").exists(), name


def test_module_table_names_every_domain_subpackage():
    section = README.split("## The helper package `dlmi_utils`", 1)[1].split("\n## ", 1)[0]
    packages = {p.parent.name for p in (ROOT / "dlmi_utils").glob("*/__init__.py")}
    for package in packages:
        assert f"`{package}/`" in section, f"dlmi_utils/{package}/ is not in the README's table"


def test_quickstart_has_one_command_to_open_the_labs_and_one_to_test():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "jupyter lab labs/" in commands[0] and "pip install -e ." in commands[0]
    assert commands[1].endswith(".venv/bin/pytest") and '".[dev]"' in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[dev]"' in ci and ".venv/bin/pytest" in ci, ".ci/run runs the README's command"


def test_students_clone_the_release_never_this_repository():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert colab.student_install_command() in quick
    instructor_url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"][
        "Repository"]
    assert not re.search(rf"git clone {re.escape(instructor_url)}(\.git)?\s", README)
    assert colab.REPOSITORY_URL in quick


def test_quickstart_states_the_torch_range_of_pyproject():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(r for r in dependencies if r.startswith("torch"))
    assert f"`{torch}`" in quick
