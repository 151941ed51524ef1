"""The trilemma metrics on images with known answers, and against scikit-image's own results."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from engine.outputs.trilemma import (
    EXPLANATIONS,
    METRIC_KEYS,
    TrilemmaAccumulator,
    choose_reference,
    diversity,
    high_frequency_energy,
    psnr,
    ssim,
)


def random_image(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def textured(seed: int, size: int = 64) -> np.ndarray:
    """A smooth gradient with fine texture on top, so that blurring removes something measurable."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=2) * 160 + 40
    return np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)


def blurred(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    smooth = gaussian(image.astype(np.float64) / 255, sigma=sigma, channel_axis=2)
    return np.asarray(np.round(smooth * 255), dtype=np.uint8)


def test_reference_against_itself_ssim_one_detail_one() -> None:
    image = textured(1)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert math.isinf(psnr(image, image))
    accumulator = TrilemmaAccumulator(["ddim", "lcm"])
    accumulator.add("ddim", 0, image, 2.0)
    accumulator.add("lcm", 0, image.copy(), 0.5)
    table = accumulator.result()
    for mode in ("ddim", "lcm"):
        row = table.row(mode)
        assert row.ssim_to_reference == pytest.approx(1.0)
        assert row.detail_ratio == pytest.approx(1.0)
        assert row.psnr_to_reference is None  # identical: infinite, which JSON cannot hold
    assert table.row("ddim").speed_up == 1.0
    assert table.row("lcm").speed_up == pytest.approx(4.0)


def test_blurred_copy_has_less_detail_and_a_sharper_one_more() -> None:
    image = textured(2)
    soft = blurred(image)
    assert high_frequency_energy(soft) < high_frequency_energy(image)
    accumulator = TrilemmaAccumulator(["ddim", "lcm"])
    accumulator.add("ddim", 0, image, 1.0)
    accumulator.add("lcm", 0, soft, 1.0)
    row = accumulator.result().row("lcm")
    assert row.detail_ratio is not None and row.detail_ratio < 0.5
    assert row.ssim_to_reference is not None and row.ssim_to_reference < 1.0
    # Now the blurred one is the reference: the sharp one reads above 1.
    flipped = TrilemmaAccumulator(["lcm", "lightning"])
    flipped.add("lcm", 0, soft, 1.0)
    flipped.add("lightning", 0, image, 1.0)
    sharper = flipped.result().row("lightning").detail_ratio
    assert sharper is not None and sharper > 2.0


def test_identical_images_for_every_seed_have_zero_diversity() -> None:
    same = textured(3)
    assert diversity([same, same.copy(), same.copy()]) == 0.0
    accumulator = TrilemmaAccumulator(["ddim", "lightning"])
    for seed in (10, 11, 12):
        accumulator.add("ddim", seed, textured(seed), 1.0)
        accumulator.add("lightning", seed, same, 0.1)
    table = accumulator.result()
    assert table.row("lightning").diversity_ratio == 0.0
    assert table.row("ddim").diversity_ratio == 1.0


def test_one_seed_has_no_diversity_rather_than_zero() -> None:
    assert diversity([textured(4)]) is None
    accumulator = TrilemmaAccumulator(["ddim", "lcm"])
    accumulator.add("ddim", 0, textured(4), 1.0)
    accumulator.add("lcm", 0, textured(5), 1.0)
    table = accumulator.result()
    assert table.row("ddim").diversity_ratio is None
    assert table.row("lcm").diversity_ratio is None
    assert table.as_json()["modes"]["lcm"]["diversity_ratio"] is None


def test_agrees_with_scikit_image_on_random_images() -> None:
    for seed in range(3):
        a, b = random_image(seed), random_image(seed + 100)
        expected_ssim = structural_similarity(a, b, channel_axis=2, data_range=255)
        expected_psnr = peak_signal_noise_ratio(a, b, data_range=255)
        assert ssim(a, b) == pytest.approx(expected_ssim, rel=1e-12)
        assert psnr(a, b) == pytest.approx(expected_psnr, rel=1e-12)
    # And by hand, from the PSNR's definition: 10 log10(255² / MSE).
    a, b = random_image(7), random_image(8)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / mse))


def test_reference_is_ddim_when_present_else_the_first_mode() -> None:
    assert choose_reference(["lcm", "ddim", "lightning"]) == "ddim"
    assert choose_reference(["lightning", "lcm"]) == "lightning"
    table = TrilemmaAccumulator(["lightning", "lcm"]).result()
    assert table.reference == "lightning"
    assert "no ddim" in table.reference_reason


def test_fidelity_waits_for_the_reference_of_the_same_seed() -> None:
    accumulator = TrilemmaAccumulator(["ddim", "lcm"])
    accumulator.add("lcm", 0, textured(20), 0.5)  # before its reference: nothing to compare yet
    assert accumulator.result().row("lcm").ssim_to_reference is None
    accumulator.add("ddim", 0, textured(20), 2.0)  # the same picture: measured when the reference lands
    assert accumulator.result().row("lcm").ssim_to_reference == pytest.approx(1.0)
    accumulator.add("lcm", 1, textured(21), 0.5)
    accumulator.add("ddim", 1, textured(22), 2.0)
    ssim_two_seeds = accumulator.result().row("lcm").ssim_to_reference
    assert ssim_two_seeds is not None and ssim_two_seeds < 0.9


def test_json_has_every_key_and_no_infinity() -> None:
    accumulator = TrilemmaAccumulator(["ddim", "lcm", "lightning"])
    for seed in (0, 1):
        for index, mode in enumerate(accumulator.modes):
            accumulator.add(mode, seed, textured(seed * 10 + index), 1.0 + index)
    data = accumulator.result().as_json()
    assert data["reference"] == "ddim"
    assert set(data["modes"]) == {"ddim", "lcm", "lightning"}
    for row in data["modes"].values():
        assert tuple(row) == METRIC_KEYS
    assert data["modes"]["ddim"] == {
        "seconds_per_image": 1.0,
        "speed_up": 1.0,
        "ssim_to_reference": 1.0,
        "psnr_to_reference": None,
        "detail_ratio": 1.0,
        "diversity_ratio": 1.0,
    }
    json.dumps(data, allow_nan=False)  # raises on inf or nan
    assert set(EXPLANATIONS) == set(METRIC_KEYS)


def test_images_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="different sizes"):
        ssim(textured(0, 64), textured(0, 32))
