"""The import boundary: engine/ never imports Qt or gui/; gui/ never imports the ML stack.

Static, on every import statement (top level or inside functions), so a lazy import in the wrong
package is caught too. The GUI reaches torch only through the worker thread's import of
engine.engine, which lives in engine/.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "engine": ("PySide6", "gui", "shiboken6"),
    "gui": ("torch", "diffusers", "transformers", "peft", "accelerate"),
}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in banned:
                    found.append(f"{path.relative_to(root)}:{line}: {package}/ must not import {module}")
    return found


def main() -> int:
    problems = violations()
    for problem in problems:
        print(problem)
    print(f"import boundary: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
