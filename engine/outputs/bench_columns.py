"""The bench's figures per mode: report.json's keys and the headers the page, the CLI table and the
window's bench browser show them under. Imports nothing, so that the window can read it before torch."""

from __future__ import annotations

# The trilemma's keys as compare names them (engine.outputs.trilemma.METRIC_KEYS), then what a bench adds.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("seconds_per_image", "s / image"),
    ("speed_up", "speed-up"),
    ("ssim_to_reference", "SSIM"),
    ("psnr_to_reference", "PSNR dB"),
    ("detail_ratio", "detail"),
    ("diversity_ratio", "diversity"),
    ("adherence", "adherence"),
    ("clip_diversity", "CLIP diversity"),
)
BENCH_METRIC_KEYS = tuple(key for key, _ in COLUMNS)
