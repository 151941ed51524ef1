"""A table that fits the terminal: columns narrow, text ones first, and their text wraps inside them.

The width is the terminal's (shutil.get_terminal_size, which reads COLUMNS first); output that is not
a terminal and sets no COLUMNS gets 80. Scripts that need every character whole read a --json form.
"""

from __future__ import annotations

import itertools
import shutil
import textwrap
from collections.abc import Sequence

GAP = "  "
# How far a column narrows in each round, the first column (a name, a path) being the one kept whole
# longest: text wraps between words, while a path cut in two is harder to read and to copy. Below
# MIN_COLUMN nothing narrows: a line that runs over a very narrow terminal reads better than slivers.
TEXT_MIN = 18
MIN_COLUMN = 12


def terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(80, 24)).columns


def column_widths(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Each column's natural width, narrowed one character at a time, widest first, until a row fits:
    the text columns down to TEXT_MIN, then the first column, then all of them down to MIN_COLUMN."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    room = width - len(GAP) * (len(widths) - 1)
    text = range(1, len(widths))
    for floors in (dict.fromkeys(text, TEXT_MIN), {0: MIN_COLUMN}, dict.fromkeys(text, MIN_COLUMN)):
        while sum(widths) > room and (narrowable := [i for i, low in floors.items() if widths[i] > low]):
            widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return widths


def _wrapped(cell: str, width: int) -> list[str]:
    # Paths have no spaces: break_long_words cuts them at the column's edge rather than overflowing.
    return textwrap.wrap(cell, width, break_on_hyphens=False) or [""]


def fitted_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """The header and rows as lines of at most `width` characters (more only where every column is at
    MIN_COLUMN)."""
    widths = column_widths(header, rows, width)
    lines: list[str] = []
    for row in (header, *rows):
        cells = [_wrapped(cell, w) for cell, w in zip(row, widths, strict=True)]
        for parts in itertools.zip_longest(*cells, fillvalue=""):
            lines.append(GAP.join(f"{part:{w}}" for part, w in zip(parts, widths, strict=True)).rstrip())
    return lines
