"""The prompts of `fewstep bench`: a text file (one prompt a line), a CSV or JSONL file with prompt,
negative_prompt and category, or a built-in set by name: `pocket` (the built-in model's grammar) or
`parti` (PartiPrompts, shipped in resources/parti/ with its Apache-2.0 licence).

Read and checked whole before any model loads: a bad line is one error naming the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.cli.arguments import UsageError
from engine.files.safe_paths import special_file_problem

# The built-in model's set: fixed prompts of the pocket grammar, drawn once with this seed.
POCKET_PROMPTS = 24
POCKET_SEED = 23
PARTI_FILE = "parti/PartiPrompts.tsv"
MAX_PROMPTS = 100_000
MAX_PROMPT_CHARS = 2_000


@dataclass(frozen=True)
class BenchPrompt:
    text: str
    negative: str = ""
    category: str = ""

    def as_json(self) -> dict[str, str]:
        return {"prompt": self.text, "negative_prompt": self.negative, "category": self.category}


def pocket_prompts() -> tuple[BenchPrompt, ...]:
    """The pocket grammar's benchmark set, categorised by shape: the attribute the model finds hardest."""
    from engine.pocket.grammar import evaluation_prompts

    return tuple(
        BenchPrompt(p.text, "", p.shape) for p in evaluation_prompts(POCKET_PROMPTS, seed=POCKET_SEED)
    )


def parti_prompts() -> tuple[BenchPrompt, ...]:
    """PartiPrompts' 1,632 prompts, categorised as the paper does (Animals, Arts, World Knowledge...)."""
    from engine.files.resources import shipped

    text = shipped(PARTI_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return _checked(((rows.line_num, BenchPrompt(r["Prompt"], "", r["Category"])) for r in rows), "parti")


def _checked(prompts: Iterable[tuple[int, BenchPrompt]], source: str) -> tuple[BenchPrompt, ...]:
    out = []
    for line, prompt in prompts:
        if not prompt.text.strip():
            raise UsageError(f"--prompts {source}, line {line}: the prompt is empty")
        if len(prompt.text) > MAX_PROMPT_CHARS or len(prompt.negative) > MAX_PROMPT_CHARS:
            raise UsageError(f"--prompts {source}, line {line}: longer than {MAX_PROMPT_CHARS} characters")
        out.append(BenchPrompt(prompt.text.strip(), prompt.negative.strip(), prompt.category.strip()))
        if len(out) > MAX_PROMPTS:
            raise UsageError(f"--prompts {source}: more than {MAX_PROMPTS} prompts")
    if not out:
        raise UsageError(f"--prompts {source}: no prompts in it")
    return tuple(out)


def _field(row: dict[str, object], name: str, source: str, line: int) -> str:
    value = row.get(name) or ""
    if not isinstance(value, str):
        raise UsageError(f"--prompts {source}, line {line}: {name} must be text, not {type(value).__name__}")
    return value


def _from_rows(rows: Iterable[tuple[int, dict[str, object]]], source: str) -> tuple[BenchPrompt, ...]:
    def prompts() -> Iterable[tuple[int, BenchPrompt]]:
        for line, row in rows:
            if "prompt" not in row:
                raise UsageError(f"--prompts {source}, line {line}: no 'prompt' field")
            yield (
                line,
                BenchPrompt(
                    _field(row, "prompt", source, line),
                    _field(row, "negative_prompt", source, line),
                    _field(row, "category", source, line),
                ),
            )

    return _checked(prompts(), source)


def _jsonl_rows(text: str, source: str) -> Iterable[tuple[int, dict[str, object]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--prompts {source}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise UsageError(f"--prompts {source}, line {number}: not a JSON object")
        yield number, row


def read_prompts(source: str) -> tuple[BenchPrompt, ...]:
    """The prompts `--prompts source` names; UsageError (one line) for anything unreadable."""
    if source == "pocket":
        return pocket_prompts()
    if source == "parti":
        return parti_prompts()
    path = Path(source)
    if problem := special_file_problem(path):
        raise UsageError(f"--prompts {problem}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(
            f"--prompts {source}: no such file (or give a built-in set: pocket, parti)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prompts {source}: cannot read it as UTF-8 text ({exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _from_rows(_jsonl_rows(text, source), source)
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "prompt" not in reader.fieldnames:
            raise UsageError(f"--prompts {source}: a CSV needs a header row with a 'prompt' column")
        rows = ((reader.line_num, dict(row)) for row in reader)
        return _from_rows(((n, {k: v for k, v in r.items() if k is not None}) for n, r in rows), source)
    return _checked(
        ((n, BenchPrompt(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()), source
    )
