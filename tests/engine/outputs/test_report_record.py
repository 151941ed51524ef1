"""report.json as a record: the trilemma per mode, the runtime, each model file's size and SHA-256;
`fewstep compare --seeds N` runs N seeds and prints the trilemma table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from engine.outputs.trilemma import METRIC_KEYS
from tests.engine.cli.test_cli import model_args


def test_compare_with_seeds_writes_the_trilemma_and_the_file_hashes(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--prompt", "a red circle", "--seed", "7", "--seeds", "3", "--modes", "lcm,ddim,lightning",
         "--steps", "ddim=4", "--out", str(out), *model_args(tiny_models)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["seeds"] == [7, 8, 9]
    assert sorted({(r["mode"], r["seed"]) for r in report["results"]}) == sorted(
        (m, s) for m in ("lcm", "ddim", "lightning") for s in (7, 8, 9)
    )
    trilemma = report["trilemma"]
    assert trilemma["reference"] == "ddim"  # present, though not first
    assert list(trilemma["modes"]) == ["lcm", "ddim", "lightning"]
    for row in trilemma["modes"].values():
        assert tuple(row) == METRIC_KEYS
    ddim = trilemma["modes"]["ddim"]
    assert ddim["speed_up"] == 1.0 and ddim["ssim_to_reference"] == 1.0 and ddim["detail_ratio"] == 1.0
    assert ddim["diversity_ratio"] == 1.0 and ddim["psnr_to_reference"] is None
    for mode in ("lcm", "lightning"):
        row = trilemma["modes"][mode]
        assert 0.0 < row["ssim_to_reference"] < 1.0
        assert row["psnr_to_reference"] > 0.0
        assert row["diversity_ratio"] > 0.0  # three different seeds
        assert row["seconds_per_image"] > 0.0
    # The table is printed, one row per mode.
    for mode in ("lcm", "ddim", "lightning"):
        assert any(line.startswith(mode + " ") and "x" in line for line in captured.out.splitlines())
    assert "reference: ddim" in captured.out
    # Runtime and provenance; the existing keys stay.
    assert report["device_type"] == "cpu" and report["dtype"] == "float32"
    assert set(report["versions"]) >= {"fewstep", "torch", "diffusers", "transformers", "peft"}
    assert {"prompt", "results", "skipped", "grid", "device", "memory"} <= set(report)
    files = {Path(f["path"]): f for f in report["model_files"]}
    lightning = tiny_models.lightning_unet.resolve()
    assert files[lightning]["role"] == "lightning-unet"
    assert files[lightning]["size"] == lightning.stat().st_size
    assert files[lightning]["sha256"] == hashlib.sha256(lightning.read_bytes()).hexdigest()
    # A folder is listed file by file, weights and configs alike.
    base_files = [f for f in report["model_files"] if f["role"] == "base"]
    assert any(f["path"].endswith("unet/config.json") for f in base_files)
    assert any(f["path"].endswith(".safetensors") for f in base_files)
    assert (out / "reproduce.py").is_file()


def test_one_seed_reports_no_diversity_and_the_first_mode_as_reference_without_ddim(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--prompt", "a red circle", "--modes", "lightning,lcm", "--out", str(out),
         *model_args(tiny_models)]
    )  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    trilemma = json.loads((out / "report.json").read_text())["trilemma"]
    assert trilemma["reference"] == "lightning"
    assert "no ddim" in trilemma["reference_reason"]
    assert all(row["diversity_ratio"] is None for row in trilemma["modes"].values())


@pytest.mark.parametrize("seeds", ["0", "65", "x"])
def test_bad_seed_counts_are_refused_in_one_line(
    seeds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    code = main(["compare", "--prompt", "p", "--seeds", seeds, "--out", str(out)])
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0]
    assert not out.exists()
