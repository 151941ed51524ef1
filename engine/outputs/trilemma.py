"""The generative learning trilemma, measured from the images themselves: speed, fidelity, detail, diversity.

Every number compares a mode with the comparison's reference: `ddim` when it is in the comparison,
otherwise the first mode. They are proxies computed from pixels, not perceptual scores (no CLIP or
LPIPS weights ship with Fewstep):

- seconds_per_image: denoising plus decoding, averaged over the mode's images. The text encoding
  (shared by every mode) and the mode switch (once per comparison) are left out, so that modes
  compare fairly. speed_up: the reference's seconds over the mode's.
- ssim_to_reference / psnr_to_reference: scikit-image's SSIM (per colour channel, averaged) and PSNR
  against the reference image of the same seed, averaged over seeds. They say how far a mode strays
  from what the reference draws from the same noise; not whether its picture is better or worse.
  PSNR of two identical images is infinite, which JSON cannot hold: it is reported as None (null).
- detail_ratio: high-frequency energy, measured as the variance of the Laplacian of the luminance
  (scikit-image's 3x3 Laplace filter), of the mode's images over the reference's. Below 1: blur or
  lost texture; above 1: sharper than the reference, or noise and over-sharpening.
- diversity_ratio: the mean pairwise distance between a mode's images across seeds, over the same
  mean for the reference. The distance is the root-mean-square difference of the images shrunk to
  32 pixels on their long side (block means), so it reads layout and colour rather than fine grain. Near 0: the
  mode draws nearly the same picture whatever the seed. None with one seed: a single image has no
  spread, which is not the same as zero spread.

Pure numpy and scikit-image: the GUI may import it, but computes it on the worker thread.
`TrilemmaAccumulator` takes images one at a time as they finish and measures each once, so the
table can be rebuilt after every tile cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.contract.request import ComparisonResult

REFERENCE_MODE = "ddim"
DIVERSITY_SIDE = 32  # pixels on the long side of the thumbnails diversity compares
METRIC_KEYS = (
    "seconds_per_image",
    "speed_up",
    "ssim_to_reference",
    "psnr_to_reference",
    "detail_ratio",
    "diversity_ratio",
)

FloatImage = npt.NDArray[np.float64]
Image = npt.NDArray[Any]  # (height, width, 3) uint8, or (height, width) for grey

# One sentence per number: what it tells and what it does not. Shown as tooltips and in the README.
EXPLANATIONS: Mapping[str, str] = {
    "seconds_per_image": "Seconds to denoise and decode one image; it leaves out the text encoding every"
    " mode shares and the one-off mode switch.",
    "speed_up": "How many times faster than the reference; it says nothing about how good the image is.",
    "ssim_to_reference": "Structural similarity (1 = identical) to the reference image of the same seed;"
    " it tells how far the mode strays from the reference, not whether its picture is better.",
    "psnr_to_reference": "Peak signal-to-noise ratio in dB against the reference of the same seed (higher ="
    " closer); a pixel-level measure that punishes small shifts a viewer would not notice.",
    "detail_ratio": "Fine detail (variance of the Laplacian) over the reference's; below 1 is blur or lost"
    " texture, above 1 is extra sharpness or noise, and it cannot tell those apart.",
    "diversity_ratio": "How different the mode's images are from seed to seed, over the reference's; near 0"
    " means nearly the same picture for every seed, and it needs at least two seeds.",
}


def choose_reference(modes: Sequence[str]) -> str:
    """`ddim` when it is in the comparison, otherwise the first mode."""
    if not modes:
        raise ValueError("a comparison without modes has no reference")
    return REFERENCE_MODE if REFERENCE_MODE in modes else modes[0]


def reference_reason(reference: str) -> str:
    if reference == REFERENCE_MODE:
        return "ddim is in the comparison, so it is the reference"
    return f"no ddim in the comparison, so its first mode, {reference}"


def _rgb(image: Image) -> Image:
    array = np.asarray(image)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image of shape (height, width, 3), not {array.shape}")
    return array[:, :, :3]


def _same_shape(a: Image, b: Image) -> tuple[Image, Image]:
    a, b = _rgb(a), _rgb(b)
    if a.shape != b.shape:
        raise ValueError(f"images of different sizes cannot be compared: {a.shape} and {b.shape}")
    return a, b


def ssim(image: Image, reference: Image) -> float:
    """scikit-image's structural similarity of two 8-bit RGB images, per channel and averaged."""
    from skimage.metrics import structural_similarity

    a, b = _same_shape(image, reference)
    # The default 7x7 window needs at least 7 pixels a side; smaller images use the largest odd window.
    side = min(a.shape[0], a.shape[1], 7)
    window = side if side % 2 else side - 1
    if window < 3:
        raise ValueError(f"an image of {a.shape[1]}x{a.shape[0]} is too small for SSIM")
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=window))


def psnr(image: Image, reference: Image) -> float:
    """scikit-image's peak signal-to-noise ratio in dB of two 8-bit images; inf when identical."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _same_shape(image, reference)
    if np.array_equal(a, b):
        return math.inf  # scikit-image divides by a zero error here, with a warning
    return float(peak_signal_noise_ratio(b, a, data_range=255))


def luminance(image: Image) -> FloatImage:
    """Rec. 709 luminance in [0, 1], as scikit-image's rgb2gray computes it."""
    from skimage.color import rgb2gray

    return np.asarray(rgb2gray(_rgb(image)), dtype=np.float64)


def high_frequency_energy(image: Image) -> float:
    """The variance of the Laplacian of the luminance: how much fine detail and edge an image holds."""
    from skimage.filters import laplace

    return float(np.var(laplace(luminance(image), ksize=3)))


def thumbnail(image: Image, side: int = DIVERSITY_SIDE) -> FloatImage:
    """The image shrunk to `side` pixels on its long side by block means, values in [0, 1]."""
    from skimage.measure import block_reduce

    rgb = _rgb(image).astype(np.float64) / 255.0
    factor = max(1, -(-max(rgb.shape[:2]) // side))  # ceil: the result is at most `side` pixels
    # Block means are an exact box filter: no aliasing, and 5 times faster than resize's Gaussian.
    return np.asarray(block_reduce(rgb, (factor, factor, 1), np.mean), dtype=np.float64)


def rms_distance(a: FloatImage, b: FloatImage) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def diversity(images: Sequence[Image]) -> float | None:
    """Mean pairwise RMS distance between the thumbnails of several images; None with fewer than 2."""
    if len(images) < 2:
        return None
    thumbs = [thumbnail(image) for image in images]
    return float(np.mean([rms_distance(a, b) for a, b in combinations(thumbs, 2)]))


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0.0:
        return None  # no reference spread or detail to compare against: the ratio means nothing
    return value / reference


@dataclass(frozen=True)
class TrilemmaRow:
    """One mode's numbers; None where a number cannot be measured (see the module's docstring)."""

    mode: str
    images: int
    seconds_per_image: float | None
    speed_up: float | None
    ssim_to_reference: float | None
    psnr_to_reference: float | None
    detail_ratio: float | None
    diversity_ratio: float | None
    # A LoRA mode's route ("fused" as its model card runs it, or "unfused": then its speed is
    # Fewstep's unfused route's, not the method's); None for a mode without a LoRA.
    lora_route: str | None = None

    @property
    def title(self) -> str:
        """The mode's name, with its LoRA route where it has one: "lcm-lora (unfused)"."""
        return f"{self.mode} ({self.lora_route})" if self.lora_route else self.mode

    def value(self, key: str) -> float | None:
        if key not in METRIC_KEYS:
            raise KeyError(key)
        result: float | None = getattr(self, key)
        return result

    def as_json(self) -> dict[str, float | str | None]:
        """The six numbers, rounded; None (JSON null) where absent or infinite; and a LoRA mode's
        route."""

        def clean(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, 6)

        numbers: dict[str, float | str | None] = {key: clean(self.value(key)) for key in METRIC_KEYS}
        return {**numbers, "lora_route": self.lora_route} if self.lora_route else numbers


@dataclass(frozen=True)
class Trilemma:
    reference: str
    reference_reason: str
    rows: tuple[TrilemmaRow, ...]
    seeds: tuple[int, ...]

    def row(self, mode: str) -> TrilemmaRow:
        return next(r for r in self.rows if r.mode == mode)

    def as_json(self) -> dict[str, Any]:
        """report.json's `trilemma`: each mode keyed by name, plus the reference and why it is the one."""
        return {
            "reference": self.reference,
            "reference_reason": self.reference_reason,
            "modes": {row.mode: row.as_json() for row in self.rows},
        }

    def table(self) -> str:
        """The table the CLI prints."""
        header = ("mode", "s/image", "speed-up", "SSIM", "PSNR dB", "detail", "diversity")
        width = max([15, *(len(row.title) for row in self.rows)])
        lines = [f"{header[0]:{width}} " + " ".join(f"{h:>9}" for h in header[1:])]
        for row in self.rows:
            cells = [format_value(key, row.value(key)) for key in METRIC_KEYS]
            lines.append(f"{row.title:{width}} " + " ".join(f"{c:>9}" for c in cells))
        lines.append(f"reference: {self.reference_reason}")
        if any(row.lora_route == "unfused" for row in self.rows):
            lines.append(
                "unfused: the LoRA ran unfused (it did not fit beside the base UNet, or --lora-route"
                " unfused); its speed is that route's, not the method's (the model cards fuse)"
            )
        return "\n".join(lines)


def format_value(key: str, value: float | None) -> str:
    """One number as the table shows it; "-" where absent."""
    if value is None:
        return "-"
    if key == "psnr_to_reference":
        return "inf" if math.isinf(value) else f"{value:.1f}"
    if key == "seconds_per_image":
        return f"{value:.3f}"
    if key == "speed_up":
        return f"{value:.1f}x"
    return f"{value:.3f}"


@dataclass
class _ModeState:
    seconds: dict[int, float] = field(default_factory=dict)
    images: dict[int, Image] = field(default_factory=dict)
    detail: dict[int, float] = field(default_factory=dict)
    thumbs: dict[int, FloatImage] = field(default_factory=dict)
    fidelity: dict[int, tuple[float, float]] = field(default_factory=dict)  # seed -> (ssim, psnr)
    distances: dict[tuple[int, int], float] = field(default_factory=dict)


class TrilemmaAccumulator:
    """Images in as they finish, the table out at any time; each image is measured once.

    Not thread-safe: one thread feeds it (the engine's worker, or the CLI).
    """

    def __init__(self, modes: Sequence[str]) -> None:
        self.modes = tuple(modes)
        self.reference = choose_reference(self.modes)
        self._state = {mode: _ModeState() for mode in self.modes}
        self._routes: dict[str, str] = {}

    def add(self, mode: str, seed: int, image: Image, seconds: float, lora_route: str | None = None) -> None:
        if mode not in self._state:
            raise KeyError(f"mode {mode!r} is not in this comparison ({', '.join(self.modes)})")
        if lora_route is not None:
            self._routes[mode] = lora_route
        state = self._state[mode]
        state.seconds[seed] = seconds
        state.images[seed] = _rgb(image)
        state.detail[seed] = high_frequency_energy(image)
        thumb = thumbnail(image)
        for other_seed, other_thumb in state.thumbs.items():
            pair = (min(seed, other_seed), max(seed, other_seed))
            state.distances[pair] = rms_distance(thumb, other_thumb)
        state.thumbs[seed] = thumb
        reference = self._state[self.reference]
        if mode == self.reference:
            # Every mode waiting for this seed's reference image is measured now.
            for other_mode, other in self._state.items():
                if other_mode != mode and seed in other.images:
                    other.fidelity[seed] = self._fidelity(other.images[seed], state.images[seed])
        elif seed in reference.images:
            state.fidelity[seed] = self._fidelity(state.images[seed], reference.images[seed])

    @staticmethod
    def _fidelity(image: Image, reference: Image) -> tuple[float, float]:
        return ssim(image, reference), psnr(image, reference)

    def result(self) -> Trilemma:
        reference = self._state[self.reference]
        ref_seconds = _mean(reference.seconds.values())
        ref_spread = _mean(reference.distances.values())
        rows = []
        for mode in self.modes:
            state = self._state[mode]
            seconds = _mean(state.seconds.values())
            # Detail over the seeds both have, so that a half-finished comparison compares like with like.
            shared = [s for s in state.detail if s in reference.detail]
            detail = _ratio(
                _mean(state.detail[s] for s in shared), _mean(reference.detail[s] for s in shared)
            )
            spread = _mean(state.distances.values())
            if mode == self.reference:
                ssim_value: float | None = 1.0 if state.images else None
                psnr_value: float | None = None  # infinite against itself
                detail = 1.0 if detail is not None else None
            else:
                fidelity = list(state.fidelity.values())
                ssim_value = _mean(f[0] for f in fidelity)
                psnrs = [f[1] for f in fidelity]
                psnr_value = _mean(psnrs) if psnrs and all(math.isfinite(p) for p in psnrs) else None
            rows.append(
                TrilemmaRow(
                    mode=mode,
                    images=len(state.images),
                    seconds_per_image=seconds,
                    speed_up=_ratio(ref_seconds, seconds),
                    ssim_to_reference=ssim_value,
                    psnr_to_reference=psnr_value,
                    detail_ratio=detail,
                    diversity_ratio=_ratio(spread, ref_spread),
                    lora_route=self._routes.get(mode),
                )
            )
        seeds = sorted({seed for state in self._state.values() for seed in state.images})
        return Trilemma(
            reference=self.reference,
            reference_reason=reference_reason(self.reference),
            rows=tuple(rows),
            seeds=tuple(seeds),
        )


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return float(np.mean(items)) if items else None


def image_seconds(denoising: float, decode: float) -> float:
    """What `seconds_per_image` counts of one image's timings."""
    return denoising + decode


def trilemma_of(comparison: ComparisonResult) -> Trilemma:
    """The trilemma of a finished comparison, modes in the order asked for."""
    modes = [s.mode for s in comparison.request.modes if any(r.mode == s.mode for r in comparison.results)]
    accumulator = TrilemmaAccumulator(modes)
    for result in comparison.results:
        seconds = image_seconds(result.timings.denoising, result.timings.decode)
        accumulator.add(result.mode, result.seed, result.image, seconds, result.lora_route)
    return accumulator.result()
