"""The architecture's import contracts (pyproject.toml's [tool.importlinter]) hold, and can fail."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_repository_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _package(root: Path, dotted: str, body: str = "") -> None:
    folder = root.joinpath(*dotted.split("."))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(body)


def test_the_contracts_catch_lazy_imports_across_the_boundary(tmp_path: Path) -> None:
    """The repository's own contracts, on a skeleton with four lazy imports that break them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = config["contracts"]
    lines = [
        "[tool.importlinter]",
        'root_packages = ["engine", "gui", "devtools"]',
        "include_external_packages = true",
    ]
    for contract in contracts:
        lines.append("[[tool.importlinter.contracts]]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in contract.items())
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    for name in ("engine.cli", "engine.runtime", "engine.outputs", "engine.files", "engine.contract"):
        _package(tmp_path, name)
    _package(tmp_path, "engine.pocket")
    _package(tmp_path, "devtools", "def tool():\n    pass\n")
    for name in ("gui.launcher", "gui.app", "gui.self_test", "gui.widgets", "gui.state"):
        _package(tmp_path, name)
    _package(tmp_path, "gui.xcb_libraries", "def check():\n    from PySide6 import QtCore\n")
    (tmp_path / "engine" / "contract" / "heavy.py").write_text("def f():\n    import torch\n")
    (tmp_path / "gui" / "state" / "lazy.py").write_text("def f():\n    import diffusers\n")
    (tmp_path / "engine" / "files" / "uses_tools.py").write_text("def f():\n    from devtools import tool\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "engine.contract.heavy -> torch" in result.stdout
    assert "gui.state.lazy -> diffusers" in result.stdout
    assert "engine.files.uses_tools -> devtools" in result.stdout
    assert "gui.xcb_libraries -> PySide6" in result.stdout


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace('"', '\\"') + '"'
