"""The student release (``dlmi-labs release``): a working repository with the labs and the
package, and nothing of the instructors' (solutions, grader, tests, benchmarks, scripts)."""

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from dlmi_utils.course import colab
from dlmi_utils.course.notebooks import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    main,
    make_student_notebook,
    notebook_text,
    solution_notebooks,
)
from dlmi_utils.course.release import (
    INSTRUCTOR_ONLY_SCRIPTS,
    RELEASE_ENTRIES,
    ReleaseError,
    release,
    student_pyproject,
    toml_text,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SENTINEL = "solution_only_sentinel_4711"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The release of this repository, written once for the module."""
    out = tmp_path_factory.mktemp("release") / "dlmi-labs-student"
    release(ROOT, out)
    return out


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".git" not in p.parts}


def _fake_instructor_repo(root: Path) -> Path:
    """A small instructor repository: one solution whose solution code holds SENTINEL, a
    package with a grader, tests and benchmarks that must not ship."""
    (root / "solutions").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Lab 07 — Demo\n\n{colab.colab_badge('labs/07.ipynb')}"),
        nbformat.v4.new_code_cell(colab.setup_cell_source(), metadata={"tags": ["setup"]}),
        nbformat.v4.new_code_cell(
            f"def double(x):\n    ### BEGIN SOLUTION\n    {SENTINEL} = 2 * x\n"
            f"    return {SENTINEL}\n    ### END SOLUTION",
            metadata={"nbgrader": {"grade_id": "double", "solution": True}}),
    ]
    nbformat.write(nb, root / "solutions" / "07_demo.ipynb")
    for package in ("dlmi_utils", "dlmi_utils/course", "dlmi_utils/course/grading",
                    "dlmi_utils/course/checks", "tests", "benchmarks", "scripts"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text(f'"""{package}"""\n')
    (root / "data").mkdir()
    (root / "data" / "README.md").write_text("# Data\n")
    for name in ("pyproject.toml", "environment.yml", "LICENSE"):
        shutil.copyfile(ROOT / name, root / name)
    return root


# ------------------------------------------------------------------ what the release holds
def test_release_holds_the_student_files_and_nothing_of_the_instructors(released):
    top = {p.name for p in released.iterdir()}
    assert top == set(RELEASE_ENTRIES) - {"solutions"}, "no solutions before a deadline"
    for instructor_only in ("tests", "benchmarks", "scripts", "docs", "CONTRIBUTING.md",
                            "conftest.py", ".ci"):
        assert not (released / instructor_only).exists(), instructor_only
    assert not (released / "dlmi_utils" / "course" / "grading").exists()
    assert (released / "dlmi_utils" / "course" / "checks" / "__init__.py").is_file()
    assert sorted(p.name for p in (released / "dlmi_utils" / "weights").glob("*.pt"))
    assert not list(released.rglob("__pycache__")) and not list(released.rglob("*.egg-info"))
    notebooks = {p.relative_to(released).as_posix() for p in released.rglob("*.ipynb")}
    assert notebooks == {f"labs/{p.name}" for p in SOLUTIONS}


def test_released_labs_are_the_generated_labs(released):
    for solution in SOLUTIONS:
        expected = notebook_text(make_student_notebook(nbformat.read(solution, as_version=4)))
        assert (released / "labs" / solution.name).read_text(encoding="utf-8") == expected


def _solution_regions(source: str) -> list[str]:
    return [textwrap.dedent(block).strip() for block in re.findall(
        rf"{re.escape(BEGIN_SOLUTION)}\n(.*?)\n[ \t]*{re.escape(END_SOLUTION)}", source, re.S)]


def test_no_solution_code_is_in_the_released_labs(released):
    for solution in SOLUTIONS:
        sources = [c.source for c in nbformat.read(solution, as_version=4).cells]
        regions = [r for s in sources for r in _solution_regions(s) if r]
        assert regions, f"{solution.name} has no solution region to check"
        lab = (released / "labs" / solution.name).read_text(encoding="utf-8")
        cells = [c.source for c in nbformat.reads(lab, as_version=4).cells]
        assert BEGIN_SOLUTION not in lab and END_SOLUTION not in lab
        for region in regions:
            assert not any(region in textwrap.dedent(c) for c in cells), (
                f"{solution.name}: solution code in the release: {region[:80]!r}")


def test_solution_code_appears_nowhere_in_the_release(tmp_path):
    out = tmp_path / "out"
    release(_fake_instructor_repo(tmp_path / "repo"), out)
    assert (out / "labs" / "07_demo.ipynb").is_file()
    leaks = [p for p in out.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == []
    for gone in ("tests", "benchmarks", "scripts", "dlmi_utils/course/grading"):
        assert not (out / gone).exists(), gone


# ------------------------------------------------------------------ install files and README
def test_student_pyproject_has_the_dependencies_and_no_grader(released):
    project = tomllib.loads((released / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == PYPROJECT["project"]["dependencies"]
    assert "optional-dependencies" not in project
    assert not set(INSTRUCTOR_ONLY_SCRIPTS) & set(project["scripts"])
    assert "dlmi-grade" in PYPROJECT["project"]["scripts"], "the instructors keep their grader"
    assert project["urls"]["Repository"] == colab.REPOSITORY_URL
    assert project["license-files"] == ["LICENSE"] and (released / "LICENSE").is_file()


def test_toml_text_round_trips_the_student_pyproject():
    document = student_pyproject(PYPROJECT, with_license=True)
    assert tomllib.loads(toml_text(document)) == document
    with pytest.raises(ValueError, match="top-level"):
        toml_text({"name": "x"})
    with pytest.raises(TypeError, match="TOML"):
        toml_text({"project": {"when": object()}})


def test_student_environment_names_the_student_dependencies(released):
    env = yaml.safe_load((released / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert "-e ." in dep["pip"], "Binder installs the package"
            names |= {re.split(r"[<>=]", p)[0].lower() for p in dep["pip"] if p != "-e ."}
        else:
            names.add(re.split(r"[<>=]", dep)[0].lower())
    wanted = {re.split(r"[<>=]", r)[0].lower() for r in PYPROJECT["project"]["dependencies"]}
    assert names - {"python", "pip"} == wanted


def test_student_readme_says_how_to_open_the_labs_and_nothing_of_the_instructors(released):
    readme = (released / "README.md").read_text()
    assert colab.student_install_command() in readme
    for solution in SOLUTIONS:
        assert f"](labs/{solution.name})" in readme
        assert colab.colab_url(f"labs/{solution.name}") in readme
    instructor_url = PYPROJECT["project"]["urls"]["Repository"]
    for instructor_only in ("dlmi-grade", "grading", "instructor", "solutions/", "pytest",
                            f"{instructor_url}.git", f"{instructor_url})"):
        assert instructor_only not in readme, instructor_only


# ------------------------------------------------------------------ a working repository
def _lab_imports(labs: Path, top_level: bool = False) -> set[str]:
    """The modules (``top_level``: their top-level packages) the code cells of ``labs``
    import."""
    modules = set()
    for lab in sorted(labs.glob("*.ipynb")):
        for cell in nbformat.read(lab, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join(line for line in cell.source.splitlines()
                             if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Import):
                    modules |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module)
    return {m.split(".")[0] for m in modules} if top_level else modules


def _import_probe(site: Path, labs: Path) -> str:
    """Python that imports, with ``site`` first on the path and without this repository's
    editable install, every module the labs import and every module of the package."""
    modules = _lab_imports(labs)
    return f"""
import importlib, pkgutil, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, {str(site)!r})
import dlmi_utils
assert dlmi_utils.__file__.startswith({str(site)!r}), dlmi_utils.__file__
for name in {sorted(modules)!r}:
    importlib.import_module(name)
for info in pkgutil.walk_packages(dlmi_utils.__path__, "dlmi_utils."):
    importlib.import_module(info.name)
try:
    import dlmi_utils.course.grading
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the grader ships with the release")
from dlmi_utils.pretrained import available, load_pretrained
print(len(available()), type(load_pretrained(available()[0])).__name__)
"""


def test_every_package_the_labs_import_is_a_dependency_of_the_release(released):
    """A student installs the release's dependencies only (not the test extra): each
    third-party module a lab imports must come from one of them."""
    from importlib.metadata import packages_distributions

    project = tomllib.loads((released / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower().replace("_", "-")
                for r in project["dependencies"]}
    distributions = packages_distributions()
    missing = {}
    for module in _lab_imports(released / "labs", top_level=True) - set(sys.stdlib_module_names) - {
            "dlmi_utils"}:
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported by a lab but not a dependency of the release: {missing}"


def test_every_lab_import_resolves_in_the_release(released, tmp_path):
    probe = _import_probe(released, released / "labs")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_release_installs_with_pip_and_works_from_the_install(released, tmp_path):
    """``pip install`` of the release (no dependencies, no network) gives a package whose
    modules, weights and self-checks the labs import; the grader's command is not there."""
    source = tmp_path / "source"
    shutil.copytree(released, source)  # pip builds in the source folder
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert not (site / "dlmi_utils" / "course" / "grading").exists()
    entry_points = next(site.glob("dlmi_labs-*.dist-info")) / "entry_points.txt"
    assert "dlmi-labs =" in entry_points.read_text()
    assert "dlmi-grade" not in entry_points.read_text()
    probe = _import_probe(site, released / "labs")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


# ------------------------------------------------------------------ running it again
def test_second_release_into_the_same_folder_needs_force(tmp_path):
    repo, out = _fake_instructor_repo(tmp_path / "repo"), tmp_path / "out"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    release(repo, out)  # a lone .git is an empty folder
    first = _tree_digest(out)
    with pytest.raises(ReleaseError, match="not empty.*--force"):
        release(repo, out)
    assert _tree_digest(out) == first, "a refused release changes nothing"
    (out / "NOTES.md").write_text("the students' repository's own file\n")
    (out / "labs" / "07_demo.ipynb").write_text("edited by hand")
    release(repo, out, force=True)
    assert _tree_digest(out) == {**first, "NOTES.md": _tree_digest(out)["NOTES.md"]}
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


def test_force_refuses_to_delete_files_a_release_does_not_write(tmp_path):
    repo, out = _fake_instructor_repo(tmp_path / "repo"), tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "scans.csv").write_text("precious\n")
    with pytest.raises(ReleaseError, match=r"data/scans\.csv"):
        release(repo, out, force=True)
    assert (out / "data" / "scans.csv").read_text() == "precious\n"


@pytest.mark.parametrize("where", ["repo", "parent"])
def test_release_never_writes_into_the_instructor_repository(tmp_path, where):
    repo = _fake_instructor_repo(tmp_path / "repo")
    before = _tree_digest(tmp_path)
    with pytest.raises(ReleaseError, match="instructor repository"):
        release(repo, repo if where == "repo" else tmp_path, force=True)
    assert _tree_digest(tmp_path) == before


def test_published_solutions_ship_only_when_named(tmp_path):
    repo = _fake_instructor_repo(tmp_path / "repo")
    release(repo, tmp_path / "out", publish_solutions=["7"])
    shipped = tmp_path / "out" / "solutions" / "07_demo.ipynb"
    assert shipped.read_bytes() == (repo / "solutions" / "07_demo.ipynb").read_bytes()
    assert "solutions/" in (tmp_path / "out" / "README.md").read_text()
    with pytest.raises(ReleaseError, match="no solution to publish for lab.* 03"):
        release(repo, tmp_path / "other", publish_solutions=["03"])
    assert not (tmp_path / "other").exists()


def test_command_line_release_says_why_it_refuses(tmp_path, capsys):
    repo, out = _fake_instructor_repo(tmp_path / "repo"), tmp_path / "out"
    assert main(["release", str(out), "--root", str(repo)]) == 0
    assert colab.REPOSITORY_URL in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["release", str(out), "--root", str(repo)])
    assert exit_.value.code == 2 and "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["release", str(out), "--root", str(tmp_path / "nowhere")])
    assert "instructor repository's root" in capsys.readouterr().err
    assert main(["release", str(out), "--root", str(repo), "--force"]) == 0
    assert json.loads((out / "labs" / "07_demo.ipynb").read_text())["cells"]
