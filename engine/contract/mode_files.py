"""Mode files: TOML that declares generation modes, the built-in ones and a user's, read into ModeSpec.

A file holds one `[[mode]]` table per mode (resources/modes/builtin.toml is the reference); each table
needs the keys in _REQUIRED and may add those _KNOWN lists beyond them (the card is a table of url and
quote). A mistake is one ModeFileError naming the file, the line and the
key: tomllib gives the line of a syntax error; for a bad value the key's line is found in the text.
The user's file is read apart from the built-in one, so a bad user file leaves the built-in modes as
they are. Torch-free (tomllib is the standard library's).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.contract.errors import FewstepError
from engine.contract.mode_spec import (
    SCHEDULERS,
    GuidanceKind,
    ModeFile,
    ModelCard,
    ModelRole,
    ModeSpec,
)

BUILTIN_FILE = "modes/builtin.toml"
USER_FILE_NAME = "modes.toml"  # in the config folder, beside the GUI's settings.json
TRAIN_TIMESTEPS = 1000  # SDXL's num_train_timesteps: a timestep lies in 0..999
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # a mode's name and a role: CLI words, folder names
_GUIDANCE_KINDS = {"cfg": GuidanceKind.CFG, "embedding": GuidanceKind.EMBEDDING, "none": GuidanceKind.OFF}
_REQUIRED = ("name", "label", "file", "scheduler", "steps", "guidance", "guidance_kind")
_KNOWN = frozenset(
    {
        *_REQUIRED,
        "family",
        "role",
        "scheduler_overrides",
        "steps_range",
        "steps_from_file",
        "guidance_range",
        "eta",
        "eta_range",
        "timesteps",
        "lora_scale",
        "native_size",
        "sampler_label",
        "schedule_label",
        "card",
    }
)
_CARD_KEYS = frozenset({"url", "quote"})


class ModeFileError(FewstepError):
    """A mode file that cannot be read: the message names the file, the line and the key."""


def user_modes_path() -> Path:
    """The user's mode file in the config folder (platformdirs, as the GUI's settings are found)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("fewstep", appauthor=False)) / USER_FILE_NAME


def builtin_modes() -> tuple[ModeSpec, ...]:
    resource = files("engine.resources").joinpath(BUILTIN_FILE)
    return parse_modes(resource.read_text(encoding="utf-8"), BUILTIN_FILE, source="built-in")


def read_mode_file(path: Path, known: Iterable[ModeSpec]) -> tuple[ModeSpec, ...]:
    """A user's mode file, checked against itself and the modes already known (no name twice, no
    role used as two kinds of file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModeFileError(f"{path}: cannot read this mode file ({exc})") from None
    return parse_modes(text, str(path), source=str(path), known=tuple(known))


class _Where:
    """Finds a key's line in the file's text: within the n-th [[mode]] block, else its header."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()
        self.blocks = [i for i, line in enumerate(self.lines) if re.match(r"^\s*\[\[\s*mode\s*\]\]", line)]

    def line(self, index: int, key: str | None) -> int:
        if index >= len(self.blocks):
            return 1
        start = self.blocks[index]
        end = self.blocks[index + 1] if index + 1 < len(self.blocks) else len(self.lines)
        if key is not None:
            head = key.split(".")[0]
            pattern = re.compile(rf"^\s*(\[\s*mode\.)?{re.escape(head)}\s*(=|\])")
            for number in range(start, end):
                if pattern.match(self.lines[number]):
                    return number + 1
        return start + 1

    def error(self, index: int, key: str | None, problem: str) -> ModeFileError:
        named = f"{key}: " if key else ""
        return ModeFileError(f"{self.name}, line {self.line(index, key)}: {named}{problem}")


def parse_modes(
    text: str, name: str, *, source: str, known: tuple[ModeSpec, ...] = ()
) -> tuple[ModeSpec, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+), column (\d+)", str(exc))
        place = f"line {found.group(1)}, column {found.group(2)}" if found else "syntax"
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ModeFileError(f"{name}, {place}: not valid TOML ({problem})") from None
    where = _Where(name, text)
    extra = sorted(set(data) - {"mode"})
    if extra:
        raise ModeFileError(f"{name}: {extra[0]}: unknown key; a mode file holds [[mode]] tables only")
    tables = data.get("mode", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ModeFileError(f"{name}: mode: write each mode as a [[mode]] table")
    specs: list[ModeSpec] = []
    roles = {s.role: (s.file, s.name) for s in known if s.role is not None}
    names = {s.name: s.source for s in known}
    for index, table in enumerate(tables):
        spec = _spec(table, index, where, source)
        if spec.name in names:
            raise where.error(
                index, "name", f"a mode named {spec.name!r} is already defined ({names[spec.name]})"
            )
        names[spec.name] = source
        if spec.role is not None:
            kind, other = roles.setdefault(spec.role, (spec.file, spec.name))
            if kind is not spec.file:
                raise where.error(
                    index,
                    "role",
                    f"{spec.role!r} is a {kind} file in mode {other}; this mode says {spec.file}",
                )
        specs.append(spec)
    return tuple(specs)


def _spec(table: Mapping[str, Any], index: int, where: _Where, source: str) -> ModeSpec:
    def fail(key: str | None, problem: str) -> ModeFileError:
        return where.error(index, key, problem)

    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {', '.join(sorted(_KNOWN))})")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise fail(None, f"{missing[0]}: missing; every mode needs {', '.join(_REQUIRED)}")
    get = _Reader(table, fail)
    name = get.word("name")
    file = get.choice("file", {k.value: k for k in ModeFile})
    role = get.word("role") if "role" in table else None
    if file is ModeFile.NONE and role is not None:
        raise fail("role", 'a mode with file = "none" needs no file: remove role')
    if file is not ModeFile.NONE and role is None:
        raise fail(
            None, f'role: missing; a mode with file = "{file}" names the file it needs, e.g. "tcd-lora"'
        )
    if role == ModelRole.BASE:
        raise fail("role", '"base" is the SDXL base every mode loads; name the mode\'s own file')
    scheduler = get.string("scheduler")
    if scheduler not in SCHEDULERS:
        raise fail("scheduler", f"unknown scheduler class {scheduler!r}; known: {', '.join(SCHEDULERS)}")
    steps = get.integer("steps", low=1, high=1000)
    guidance = get.number("guidance", low=0.0)
    timesteps = get.timesteps("timesteps") if "timesteps" in table else {}
    if timesteps and not SCHEDULERS[scheduler]:
        raise fail("timesteps", f"{scheduler} takes no explicit timesteps")
    eta = get.number("eta", low=0.0) if "eta" in table else None
    card = get.card("card") if "card" in table else None
    return ModeSpec(
        name=name,
        title=get.string("label"),
        family=get.string("family") if "family" in table else name,
        file=file,
        role=role,
        scheduler=scheduler,
        scheduler_overrides=get.overrides("scheduler_overrides"),
        default_steps=steps,
        default_guidance=guidance,
        guidance_kind=get.choice("guidance_kind", _GUIDANCE_KINDS),
        steps_fixed_by_file=get.boolean("steps_from_file") if "steps_from_file" in table else False,
        recommended_steps=get.int_pair("steps_range") if "steps_range" in table else (steps, steps),
        recommended_guidance=(
            get.number_pair("guidance_range") if "guidance_range" in table else (guidance, guidance)
        ),
        sampler_label=get.string("sampler_label")
        if "sampler_label" in table
        else scheduler.removesuffix("Scheduler"),
        schedule_label=get.string("schedule_label") if "schedule_label" in table else None,
        eta=eta,
        eta_range=get.number_pair("eta_range") if "eta_range" in table else None,
        timesteps=MappingProxyType(timesteps),
        lora_scale=get.number("lora_scale", low=0.0) if "lora_scale" in table else 1.0,
        native_size=get.int_pair("native_size") if "native_size" in table else None,
        card=card,
        source=source,
    )


class _Reader:
    """Typed values out of one [[mode]] table; each mistake is the caller's ModeFileError."""

    def __init__(self, table: Mapping[str, Any], fail: Any) -> None:
        self.table = table
        self.fail = fail

    def _typed(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        value = self.table[key]
        # TOML's true is a bool, which Python counts as an int: never a number here.
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise self.fail(key, f"must be {what}, not {_toml_type(value)} {value!r}")
        return value

    def string(self, key: str) -> str:
        value: str = self._typed(key, (str,), "a string")
        if not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def word(self, key: str) -> str:
        value = self.string(key)
        if not _NAME.match(value):
            raise self.fail(key, f"{value!r}: use lower-case letters, digits and hyphens (at most 40)")
        return value

    def boolean(self, key: str) -> bool:
        value: bool = self._typed(key, (bool,), "true or false")
        return value

    def integer(self, key: str, *, low: int, high: int) -> int:
        value: int = self._typed(key, (int,), "a whole number")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low} to {high}")
        return value

    def number(self, key: str, *, low: float) -> float:
        value = float(self._typed(key, (int, float), "a number"))
        if value < low:
            raise self.fail(key, f"{value:g} is below {low:g}")
        return value

    def choice(self, key: str, choices: Mapping[str, Any]) -> Any:
        value = self.string(key)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(repr(c) for c in choices)}")
        return choices[value]

    def _pair(self, key: str, kinds: tuple[type, ...], what: str) -> tuple[Any, Any]:
        value = self._typed(key, (list,), f"a list of two {what}")
        if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, kinds) for v in value):
            raise self.fail(key, f"must be a list of two {what}, like [1, 8]")
        if value[0] > value[1]:
            raise self.fail(key, f"[{value[0]}, {value[1]}]: the first is the lower")
        return value[0], value[1]

    def int_pair(self, key: str) -> tuple[int, int]:
        low, high = self._pair(key, (int,), "whole numbers")
        return int(low), int(high)

    def number_pair(self, key: str) -> tuple[float, float]:
        low, high = self._pair(key, (int, float), "numbers")
        return float(low), float(high)

    def overrides(self, key: str) -> Mapping[str, object]:
        if key not in self.table:
            return MappingProxyType({})
        value = self._typed(key, (dict,), "a table of scheduler settings")
        for name, setting in value.items():
            if not isinstance(setting, (str, int, float, bool)):
                raise self.fail(key, f"{name}: must be a string, number or true/false")
        return MappingProxyType(dict(value))

    def timesteps(self, key: str) -> dict[int, tuple[int, ...]]:
        """A list (for its own length in steps), or a table of step count -> list."""
        value = self.table[key]
        if isinstance(value, list):
            lists = {len(value): value}
        elif isinstance(value, dict):
            lists = {}
            for steps, listed in value.items():
                if not steps.isdigit() or int(steps) < 1:
                    raise self.fail(
                        key, f"{steps!r}: a table of timesteps is keyed by step count, like 4 = [...]"
                    )
                lists[int(steps)] = listed
        else:
            raise self.fail(
                key, f"must be a list of timesteps or a table of them by step count, not {_toml_type(value)}"
            )
        checked: dict[int, tuple[int, ...]] = {}
        for steps, listed in lists.items():
            if not isinstance(listed, list) or not listed:
                raise self.fail(key, f"the timesteps for {steps} steps must be a non-empty list")
            if any(isinstance(t, bool) or not isinstance(t, int) for t in listed):
                raise self.fail(key, f"{listed}: timesteps are whole numbers")
            if len(listed) != steps:
                raise self.fail(key, f"{len(listed)} timesteps listed for {steps} steps")
            if any(not 0 <= t < TRAIN_TIMESTEPS for t in listed):
                raise self.fail(key, f"{listed}: each timestep lies in 0 to {TRAIN_TIMESTEPS - 1}")
            if any(a <= b for a, b in pairwise(listed)):
                raise self.fail(key, f"{listed}: timesteps must strictly decrease")
            checked[steps] = tuple(listed)
        return checked

    def card(self, key: str) -> ModelCard:
        value = self._typed(key, (dict,), "a table with url and quote")
        unknown = sorted(set(value) - _CARD_KEYS)
        if unknown or not set(value) >= _CARD_KEYS:
            raise self.fail(key, "a [mode.card] table has exactly url and quote")
        if not all(isinstance(value[k], str) for k in _CARD_KEYS):
            raise self.fail(key, "url and quote are strings")
        return ModelCard(url=value["url"], quote=value["quote"].strip())


def _toml_type(value: object) -> str:
    return {
        bool: "true/false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
