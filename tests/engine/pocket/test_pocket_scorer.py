"""The pocket grammar, drawings and scorer: the scorer must be right on clean drawings."""

from __future__ import annotations

import numpy as np
import pytest

from devtools.pocket.scorer import detect, score, summarize
from devtools.pocket.shapes import IMAGE_SIZE, draw, layout_for, render
from engine.pocket.grammar import (
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    WORDS,
    Prompt,
    all_prompts,
    parse,
    random_prompt,
)


def test_grammar_text_and_parse_round_trip() -> None:
    prompt = Prompt("large", "red", "circle", "blue", "top left")
    assert prompt.text == "a large red circle on a blue background, top left"
    assert parse(prompt.text) == prompt
    assert parse("a small white square on a black background") == Prompt("small", "white", "square", "black")
    assert parse("A  Small White Square on a black background ,  bottom   right").position == "bottom right"
    for bad in ("a red circle on a blue background", "a large red circle on a red background", "hello"):
        with pytest.raises(ValueError):
            parse(bad)


def test_grammar_covers_the_issue_vocabulary() -> None:
    assert SIZES == ("small", "large")
    assert set(COLORS) == {"red", "green", "blue", "yellow", "orange", "purple", "white", "black"}
    assert SHAPES == ("circle", "square", "triangle")
    assert POSITIONS == ("top left", "top right", "bottom left", "bottom right", "center")
    assert "background" in WORDS and "bottom" in WORDS


def test_all_prompts_are_every_sentence_once() -> None:
    prompts = all_prompts()
    texts = [p.text for p in prompts]
    assert len(set(texts)) == len(texts) == 2 * 8 * 7 * 3 * (1 + 5)
    assert [parse(t) for t in texts] == list(prompts)
    rng = np.random.default_rng(0)
    assert {random_prompt(rng) for _ in range(200)} <= set(prompts)


def test_random_prompts_are_valid_and_name_position_as_asked() -> None:
    rng = np.random.default_rng(0)
    prompts = [random_prompt(rng, position_probability=0.5) for _ in range(400)]
    assert all(p.color != p.background for p in prompts)
    named = sum(p.position is not None for p in prompts) / len(prompts)
    assert 0.4 < named < 0.6
    assert all(parse(p.text) == p for p in prompts)


def test_drawings_follow_the_prompt() -> None:
    rng = np.random.default_rng(1)
    prompt = Prompt("large", "yellow", "square", "black", "bottom right")
    image = draw(prompt, rng)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (20, 20, 20)  # the background colour in the corner
    assert tuple(image[46, 46]) == (245, 220, 40)  # the shape at its anchor


def test_scorer_is_right_on_clean_drawings() -> None:
    rng = np.random.default_rng(2)
    prompts = [random_prompt(rng, position_probability=1.0) for _ in range(600)]
    summary = summarize([score(draw(p, rng), p) for p in prompts])
    for attribute in ("background", "color", "shape", "size", "position"):
        assert getattr(summary, attribute) >= 0.99, summary


def test_scorer_catches_each_wrong_attribute() -> None:
    rng = np.random.default_rng(3)
    prompt = Prompt("small", "green", "triangle", "white", "top right")
    image = draw(prompt, rng)
    assert score(image, prompt).all
    wrong = {
        "background": Prompt("small", "green", "triangle", "black", "top right"),
        "color": Prompt("small", "red", "triangle", "white", "top right"),
        "shape": Prompt("small", "green", "circle", "white", "top right"),
        "size": Prompt("large", "green", "triangle", "white", "top right"),
        "position": Prompt("small", "green", "triangle", "white", "bottom left"),
    }
    for attribute, other in wrong.items():
        result = score(image, other)
        assert not getattr(result, attribute), attribute
        assert not result.all


def test_scorer_without_position_does_not_score_it() -> None:
    rng = np.random.default_rng(4)
    prompt = Prompt("large", "blue", "circle", "orange")
    result = score(draw(prompt, rng), prompt)
    assert result.position is None and result.all


def test_plain_background_has_no_shape() -> None:
    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), (35, 70, 225), dtype=np.uint8)
    found = detect(image)
    assert found.background == "blue" and found.shape is None
    assert not score(image, Prompt("small", "red", "circle", "blue")).color


def test_scorer_survives_mild_noise_and_blur() -> None:
    """Generated pictures are never clean: noise and soft edges must not change the verdict."""
    rng = np.random.default_rng(5)
    prompts = [random_prompt(rng, position_probability=1.0) for _ in range(200)]
    scores = []
    for prompt in prompts:
        image = render(layout_for(prompt, rng)).astype(np.float32)
        blurred = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1) + np.roll(image, (1, 1), (0, 1))) / 4
        noisy = np.clip(blurred + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        scores.append(score(noisy, prompt))
    summary = summarize(scores)
    assert summary.all >= 0.95, summary
