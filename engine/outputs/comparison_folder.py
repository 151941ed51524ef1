"""`fewstep compare --out`: the whole folder or nothing.

The images, the grid and report.json are written into a temporary folder beside --out, which then
replaces --out whole (engine.outputs.atomic.replaced_folder). A kill at any moment leaves the
earlier comparison or the new one, never one run's report beside another run's images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.contract.request import ComparisonResult
from engine.outputs.atomic import replaced_folder
from engine.outputs.comparison_files import RunContext, write_comparison
from engine.outputs.trilemma import Trilemma


def write_comparison_folder(
    out: Path,
    comparison: ComparisonResult,
    context: RunContext,
    extra: Mapping[str, Any] | None = None,
    *,
    trilemma: Trilemma | None = None,
) -> dict[str, Any]:
    """engine.outputs.comparison_files.write_comparison into a fresh folder, swapped in as `out`."""
    with replaced_folder(out) as folder:
        return write_comparison(folder, comparison, context, extra=extra, trilemma=trilemma)
