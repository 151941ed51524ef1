"""The import-cycle check of `python -m tests`: it passes on the real tree, and on a scratch copy of a
package it fails on a planted cycle and names it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.import_cycles import PACKAGES, cycle_lines, import_graph, knots, shortest_cycle

ROOT = Path(__file__).resolve().parent.parent


def _scratch_repo(tmp_path: Path) -> Path:
    """A small copy of the repository: engine/contract (torch-free, about ten modules) and the check."""
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "engine" / "contract", repo / "engine" / "contract", ignore=ignore)
    shutil.copy(ROOT / "engine" / "__init__.py", repo / "engine" / "__init__.py")
    (repo / "tests").mkdir()
    (repo / "tests" / "__init__.py").write_text("")
    shutil.copy(ROOT / "tests" / "import_cycles.py", repo / "tests" / "import_cycles.py")
    return repo


def _check(repo: Path, *packages: str) -> subprocess.CompletedProcess[str]:
    """The check as `python -m tests` runs it: from the repository's root, which is first on sys.path."""
    return subprocess.run(
        [sys.executable, "-m", "tests.import_cycles", *packages],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_real_tree_has_no_import_cycle() -> None:
    imports = import_graph(PACKAGES)
    assert "engine.runtime.engine" in imports and "gui.app" in imports and "devtools.tiny_model" in imports
    assert cycle_lines(imports) == []


def test_a_planted_cycle_in_a_scratch_copy_fails_the_check_and_is_named(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path)
    clean = _check(repo, "engine")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no import cycle" in clean.stdout

    # placement imports modes; modes importing placement back closes a cycle of two.
    modes = repo / "engine" / "contract" / "modes.py"
    modes.write_text(modes.read_text() + "\nfrom engine.contract.placement import GIB  # planted\n")
    planted = _check(repo, "engine")
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert "import cycle: engine.contract.modes -> engine.contract.placement -> engine.contract.modes" in (
        planted.stdout
    )


def test_a_lazy_or_type_checking_import_closes_a_cycle_too(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path)
    errors = repo / "engine" / "contract" / "errors.py"
    errors.write_text(
        errors.read_text()
        + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine.contract.info import EngineInfo\n"
    )
    result = _check(repo, "engine")
    assert result.returncode == 1
    # info -> request -> errors -> info: the knot also holds validation, which request and errors share.
    assert (
        "engine.contract.errors -> engine.contract.info -> engine.contract.request -> engine.contract.errors"
        in (result.stdout)
    )


def test_an_init_importing_its_submodules_is_no_cycle_until_one_imports_back(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path)
    init = repo / "engine" / "contract" / "__init__.py"
    init.write_text(
        "from engine.contract.modes import MODES\nfrom engine.contract.errors import RequestError\n"
    )
    assert _check(repo, "engine").returncode == 0

    errors = repo / "engine" / "contract" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom engine.contract import MODES  # back from the __init__\n")
    result = _check(repo, "engine")
    assert result.returncode == 1
    assert "import cycle: engine.contract -> engine.contract.errors -> engine.contract" in result.stdout


def test_knots_are_each_named_once_with_a_shortest_cycle() -> None:
    imports = {
        "a": {"b"},
        "b": {"c", "d"},
        "c": {"a"},
        "d": {"b"},
        "e": {"e"},  # a module importing itself
        "f": {"a"},  # leads into a knot without being in one
    }
    assert knots(imports) == [["a", "b", "c", "d"], ["e"]]
    assert shortest_cycle(imports, ["a", "b", "c", "d"]) == ["a", "b", "c", "a"]
    assert cycle_lines(imports) == [
        "import cycle: a -> b -> c -> a (the knot holds 4 modules: a, b, c, d)",
        "import cycle: e -> e",
    ]
    assert knots({"a": {"b"}, "b": {"c"}, "c": set()}) == []
