"""The split between window and engine: gui never imports torch; the CLI never imports Qt."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate")
# engine modules that import torch; gui reaches them only from the worker thread's loader.
ENGINE_WITH_TORCH = (
    "engine.runtime.engine",
    "engine.runtime.device",
    "engine.runtime.loading",
    "devtools.tiny_model",
    "engine.runtime.previews",
)
ALLOWED_LAZY = {
    ("worker.py", "load_engine"): {"engine.runtime.engine", "engine.runtime.device", "engine.pocket.model"}
}


def imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def test_gui_modules_do_not_import_torch_or_the_engine_core() -> None:
    offences = []
    for path in sorted((REPO_ROOT / "gui").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        allowed_in: dict[int, set[str]] = {}
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef) and (path.name, function.name) in ALLOWED_LAZY:
                for inner in ast.walk(function):
                    allowed_in[id(inner)] = ALLOWED_LAZY[(path.name, function.name)]
        for node in ast.walk(tree):
            for name in imported_names(node):
                heavy = name.split(".")[0] in HEAVY or name in ENGINE_WITH_TORCH
                if heavy and name not in allowed_in.get(id(node), set()):
                    offences.append(f"{path.name}:{getattr(node, 'lineno', '?')} imports {name}")
    assert offences == []


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FEWSTEP_SETTINGS=str(tmp_path / "settings.json"))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120
    )


def test_the_window_is_visible_before_torch_is_imported(tmp_path: Path) -> None:
    done = run_python(
        "import json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from gui.app import create_window\n"
        "app = QApplication([])\n"
        "window = create_window(app)\n"
        "window.show()\n"
        "app.processEvents()\n"
        "print(json.dumps({'visible': window.isVisible(),"
        " 'loaded': sorted(m for m in ('torch', 'diffusers', 'transformers', 'peft') if m in sys.modules)}))\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"visible": True, "loaded": []}


def test_cli_commands_run_without_qt(tmp_path: Path) -> None:
    done = run_python(
        "import sys\n"
        "from gui.launcher import main\n"
        f"code = main(['compare', '--prompt', 'x', '--size', '65x64', '--out', {str(tmp_path / 'o')!r}])\n"
        "print(code, 'PySide6' in sys.modules)\n",
        tmp_path,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert "multiples of 8" in done.stderr and done.stderr.strip().count("\n") == 0


def test_help_and_unknown_words_answer_without_a_window(tmp_path: Path) -> None:
    done = run_python(
        "import sys\nfrom gui.launcher import main\nmain(['--help'])\nprint('PySide6' in sys.modules)\n",
        tmp_path,
    )
    assert "fewstep compare" in done.stdout and done.stdout.split()[-1] == "False"
    typo = run_python("import sys\nfrom gui.launcher import main\nsys.exit(main(['compair']))\n", tmp_path)
    assert typo.returncode == 2 and "compair" in typo.stderr
