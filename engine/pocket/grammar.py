"""The pocket model's prompt grammar: ``a <size> <color> <shape> on a <color> background[, <position>]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

SIZES: tuple[str, ...] = ("small", "large")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "center")

# Every word a prompt of the grammar can hold; the pocket tokenizers merge each into one token.
WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        ("a", "on", "background", *SIZES, *COLORS, *SHAPES, *(w for p in POSITIONS for w in p.split()))
    )
)

_PATTERN = re.compile(
    r"^\s*a\s+(?P<size>{s})\s+(?P<color>{c})\s+(?P<shape>{h})\s+on\s+a\s+(?P<bg>{c})\s+background"
    r"\s*(?:,\s*(?P<pos>{p}))?\s*$".format(
        s="|".join(SIZES),
        c="|".join(COLORS),
        h="|".join(SHAPES),
        p="|".join(p.replace(" ", r"\s+") for p in POSITIONS),
    ),
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Prompt:
    """One sentence of the grammar; ``position`` None when the prompt does not name one."""

    size: str
    color: str
    shape: str
    background: str
    position: str | None = None

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}")
        if self.color not in COLORS or self.background not in COLORS:
            raise ValueError(f"unknown colour in {self.color!r} / {self.background!r}")
        if self.color == self.background:
            raise ValueError("the shape and the background must differ in colour")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.position is not None and self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}")

    @property
    def text(self) -> str:
        sentence = f"a {self.size} {self.color} {self.shape} on a {self.background} background"
        return sentence if self.position is None else f"{sentence}, {self.position}"

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Prompt:
    """The Prompt a sentence of the grammar says; ValueError for anything else."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"not a sentence of the pocket grammar: {text!r}")
    position = match.group("pos")
    return Prompt(
        size=match.group("size").lower(),
        color=match.group("color").lower(),
        shape=match.group("shape").lower(),
        background=match.group("bg").lower(),
        position=" ".join(position.lower().split()) if position else None,
    )


def random_prompt(rng: np.random.Generator, *, position_probability: float = 0.5) -> Prompt:
    """A uniformly drawn prompt; it names a position with the given probability."""
    color, background = rng.choice(len(COLORS), size=2, replace=False)
    position = POSITIONS[rng.integers(len(POSITIONS))] if rng.random() < position_probability else None
    return Prompt(
        size=SIZES[rng.integers(len(SIZES))],
        color=COLORS[int(color)],
        shape=SHAPES[rng.integers(len(SHAPES))],
        background=COLORS[int(background)],
        position=position,
    )


def all_prompts() -> tuple[Prompt, ...]:
    """Every sentence of the grammar (2,016), always in the same order."""
    return tuple(
        Prompt(size, color, shape, background, position)
        for size in SIZES
        for color in COLORS
        for background in COLORS
        if color != background
        for shape in SHAPES
        for position in (None, *POSITIONS)
    )


def evaluation_prompts(count: int, *, seed: int = 0, position_probability: float = 0.5) -> list[Prompt]:
    """A fixed list of prompts for benchmarks: the same seed gives the same list."""
    rng = np.random.default_rng(seed)
    return [random_prompt(rng, position_probability=position_probability) for _ in range(count)]


EXAMPLE_PROMPTS: tuple[str, ...] = (
    "a large red circle on a blue background",
    "a small yellow triangle on a black background, top left",
    "a large white square on a green background, bottom right",
    "a small orange circle on a purple background, center",
)
