"""fewstep bench's numbers on known answers: bootstrap intervals, pocket adherence, CLIP score on a
tiny random CLIP saved in transformers' real layout, the prompt files and the order of the cells."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.cli.arguments import UsageError
from engine.cli.bench_prompts import BenchPrompt, read_prompts
from engine.outputs.bench_adherence import PocketScorer
from engine.outputs.bench_cells import Cell, cell_order
from engine.outputs.bench_statistics import mean_interval


def test_interval_of_a_normal_sample_matches_the_textbook_one() -> None:
    rng = np.random.default_rng(7)
    sample = rng.normal(10.0, 2.0, size=400)
    found = mean_interval(sample)
    half = 1.96 * sample.std(ddof=1) / math.sqrt(sample.size)  # the normal-theory half-width: 0.196
    assert found.value == pytest.approx(sample.mean())
    assert found.low is not None and found.high is not None
    assert found.low == pytest.approx(sample.mean() - half, abs=0.03)
    assert found.high == pytest.approx(sample.mean() + half, abs=0.03)
    assert mean_interval(sample) == found  # seeded: the same report to the digit


def test_interval_edges_constant_single_missing_and_ratio() -> None:
    assert mean_interval(np.full(5, 3.0)) == mean_interval(np.full(5, 3.0))
    constant = mean_interval(np.full(5, 3.0))
    assert (constant.value, constant.low, constant.high) == (3.0, 3.0, 3.0)
    single = mean_interval(np.array([2.0, math.nan]))
    assert (single.value, single.low, single.high) == (2.0, None, None)  # one prompt: no interval
    assert mean_interval(np.array([math.nan, math.nan])).value is None  # not measured, not 0
    # The ratio of means over the prompts both sides have: (2 + 4) / (1 + 1), the NaN prompt left out.
    ratio = mean_interval(np.array([2.0, 4.0, 100.0]), np.array([1.0, 1.0, math.nan]))
    assert ratio.value == pytest.approx(3.0)
    assert ratio.low is not None and ratio.high is not None and 2.0 <= ratio.low <= 3.0 <= ratio.high <= 4.0


def test_pocket_adherence_reads_back_a_drawing_of_the_prompt() -> None:
    from engine.pocket.grammar import parse
    from engine.pocket.shapes import draw

    text = "a large red circle on a blue background, top left"
    picture = draw(parse(text), np.random.default_rng(0))
    scores, embeddings = PocketScorer().measure([picture, picture], text)
    assert scores == [1.0, 1.0] and embeddings is None
    wrong, _ = PocketScorer().measure([picture], "a large red circle on a green background, bottom right")
    assert wrong == [pytest.approx(3 / 5)]  # background and position wrong of five named
    assert PocketScorer().measure([picture], "a cat in a hat") == ([None], None)  # outside the grammar


def _tiny_clip(folder: Path) -> None:
    """A random CLIP of a few kB, saved by save_pretrained as a real one is."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from devtools.tiny_model import tiny_vocab_and_merges, write_tokenizer

    vocab, merges = tiny_vocab_and_merges(("a", "red", "circle", "blue", "square"))
    write_tokenizer(folder / "tok", vocab, merges, pad="<|endoftext|>")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tok")
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "max_position_embeddings": 77,
        "eos_token_id": vocab["<|endoftext|>"],
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "image_size": 32,
        "patch_size": 8,
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)
    CLIPModel(config).save_pretrained(folder / "clip")
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder / "clip")


def test_clip_score_on_a_tiny_random_clip_in_the_real_layout(tmp_path: Path) -> None:
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    from engine.outputs.bench_adherence import ClipScorer

    _tiny_clip(tmp_path)
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    scores, embeddings = ClipScorer(tmp_path / "clip", "tiny").measure(pictures, "a red circle")
    # The known answer by another road: CLIP's own forward pass, whose logits are the cosine times
    # exp(logit_scale); CLIP score is 100 x that cosine, floored at 0.
    model = CLIPModel.from_pretrained(tmp_path / "clip").eval()
    processor = CLIPProcessor.from_pretrained(tmp_path / "clip")
    inputs = processor(
        text=["a red circle"],
        images=[Image.fromarray(p) for p in pictures],
        return_tensors="pt",
        padding=True,
    )
    with torch.inference_mode():
        out = model(**inputs)
        cosines = (out.logits_per_image[:, 0] / model.logit_scale.exp()).tolist()
    assert scores == pytest.approx([100 * max(c, 0.0) for c in cosines], abs=1e-3)
    assert embeddings is not None and embeddings.shape == (3, 8)
    assert np.linalg.norm(embeddings, axis=1) == pytest.approx([1.0] * 3)


def test_prompt_files_txt_csv_jsonl_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a cat\n\n a dog \n", encoding="utf-8")
    assert read_prompts(str(tmp_path / "p.txt")) == (BenchPrompt("a cat"), BenchPrompt("a dog"))
    (tmp_path / "p.csv").write_text('prompt,negative_prompt,category\n"a cat, sitting",blur,animals\n')
    assert read_prompts(str(tmp_path / "p.csv")) == (BenchPrompt("a cat, sitting", "blur", "animals"),)
    rows = [{"prompt": "a cat", "category": "animals"}, {"prompt": "a car", "negative_prompt": "rust"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert read_prompts(str(tmp_path / "p.jsonl")) == (
        BenchPrompt("a cat", "", "animals"),
        BenchPrompt("a car", "rust", ""),
    )
    assert len(read_prompts("pocket")) == 24 and {p.category for p in read_prompts("pocket")} == {
        "circle",
        "square",
        "triangle",
    }
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    with pytest.raises(UsageError, match="line 2: prompt must be text"):
        read_prompts(str(tmp_path / "bad.jsonl"))
    (tmp_path / "bad.csv").write_text("text\nhello\n")
    with pytest.raises(UsageError, match="'prompt' column"):
        read_prompts(str(tmp_path / "bad.csv"))
    with pytest.raises(UsageError, match="no such file"):
        read_prompts(str(tmp_path / "missing.txt"))


def test_cells_each_once_mode_by_mode_in_blocks() -> None:
    cells = cell_order(5, ["lightning", "ddim", "lcm-lora"], [0, 1], block=2)
    assert len(cells) == len(set(cells)) == 5 * 3 * 2
    assert len({c.id for c in cells}) == len(cells)
    assert Cell(3, "lcm-lora", 1).id == "p00003-lcm-lora-s1"
    switches = sum(1 for a, b in itertools.pairwise(cells) if a.mode != b.mode)
    assert switches == 3 * 3 - 1  # 3 blocks (2, 2, 1 prompts) of 3 modes: one switch per block and mode
    assert [c.mode for c in cells[:4]] == ["ddim"] * 4  # base-UNet modes first, as compare orders them


def test_parti_is_shipped_with_its_licence_and_read_with_its_categories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import engine.files.resources as resources
    from tests.conftest import REPO_ROOT

    # This checkout's resources/, which is what ships: an editable install may map engine.resources
    # to another checkout of the repository.
    monkeypatch.setattr(resources, "resources_root", lambda: REPO_ROOT / "resources")
    parti = read_prompts("parti")
    assert len(parti) == 1632 and parti[0] == BenchPrompt("bond", "", "Abstract")
    assert len({p.category for p in parti}) == 12
    assert "Apache License" in (REPO_ROOT / "resources" / "parti" / "LICENSE").read_text()


def test_the_bench_columns_start_with_compares_trilemma_keys() -> None:
    """report.json's keys are a contract: a bench's figures carry compare's trilemma keys, in order."""
    from engine.outputs.bench_columns import BENCH_METRIC_KEYS
    from engine.outputs.trilemma import METRIC_KEYS

    assert BENCH_METRIC_KEYS[: len(METRIC_KEYS)] == METRIC_KEYS
    assert BENCH_METRIC_KEYS[len(METRIC_KEYS) :] == ("adherence", "clip_diversity")
