from pathlib import Path

from tests.check_boundary import violations


def test_the_repository_keeps_the_boundary() -> None:
    assert violations() == []


def test_the_check_catches_a_lazy_import(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "gui").mkdir()
    (tmp_path / "engine" / "x.py").write_text("def f():\n    from PySide6 import QtCore\n")
    (tmp_path / "gui" / "y.py").write_text("import os\nimport torch.nn\n")
    assert violations(tmp_path) == [
        "engine/x.py:2: engine/ must not import PySide6",
        "gui/y.py:2: gui/ must not import torch.nn",
    ]
