"""`fewstep bench` end to end on the built-in pocket model: the folder, resuming after a kill (every cell
once, finished cells untouched), refusal of changed settings, and the page in a real headless browser."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.conftest import REPO_ROOT

PROMPTS = (
    "a large red circle on a blue background",
    "a small yellow triangle on a black background, top left",
    "a large white square on a green background, bottom right",
)
# Small and quick: DDIM at 4 steps as the reference, two seeds (diversity needs two).
FAST = ["--modes", "ddim,lightning", "--steps", "ddim=4", "--seeds", "2", "--threads", "1"]


def _prompts(folder: Path, count: int = 2) -> Path:
    path = folder / "prompts.csv"
    rows = "".join(f'"{p}",,{p.split()[3]}\n' for p in PROMPTS[:count])
    path.write_text("prompt,negative_prompt,category\n" + rows, encoding="utf-8")
    return path


def _bench(prompts: Path, out: Path, *more: str) -> list[str]:
    return ["bench", "--prompts", str(prompts), "--out", str(out), *FAST, *more]


def _cells(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "cells").iterdir())}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    assert main(_bench(_prompts(folder), folder / "out")) == EXIT_OK
    return folder / "out"


def test_a_bench_writes_every_cell_and_the_report(finished: Path) -> None:
    cells = _cells(finished)
    assert len(cells) == 2 * 2 * 2 * 2  # prompts x modes x seeds, an image and a record each
    record = json.loads(cells["p00001-lightning-s1.json"])
    assert (record["cell"], record["mode"], record["seed"], record["category"]) == (
        "p00001-lightning-s1",
        "lightning",
        1,
        "triangle",
    )
    report = json.loads((finished / "report.json").read_text())
    trilemma = report["trilemma"]
    assert trilemma["reference"] == "ddim" and set(trilemma["modes"]) == {"ddim", "lightning"}
    assert trilemma["adherence"]["metric"] == "pocket attributes"
    lightning = trilemma["modes"]["lightning"]
    low, high = trilemma["intervals"]["lightning"]["ssim_to_reference"]
    assert 0 < low <= lightning["ssim_to_reference"] <= high <= 1
    assert 0 <= lightning["adherence"] <= 1
    assert set(report["categories"]) == {"circle", "triangle"}  # the CSV's category column
    rows = list(csv.DictReader((finished / "cells.csv").read_text().splitlines()))
    assert sorted(r["cell"] for r in rows) == sorted(n[:-4] for n in cells if n.endswith(".png"))


def test_the_measures_taken_while_running_give_the_report_the_files_give(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench measured each cell as its writer saved it; the report built from those measures is the
    one the files alone give (as after a resume), byte for byte, and it reads no image to build it."""
    from engine.outputs.bench_adherence import PocketScorer
    from engine.outputs.bench_cells import cell_order
    from engine.outputs.bench_folder import BenchFolder
    from engine.outputs.bench_live_metrics import LiveMeasures
    from engine.outputs.bench_report import write_bench_report

    made = {name: (finished / name).read_bytes() for name in ("report.json", "cells.csv", "index.html")}
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    folder = BenchFolder(copy)
    settings = json.loads((copy / "bench.json").read_text())["settings"]

    def files() -> dict[str, bytes]:
        return {name: (copy / name).read_bytes() for name in made}

    write_bench_report(folder, settings, PocketScorer(), not_measured="")  # from the files alone
    assert files() == made
    # The cells measured as they arrive, in reverse (each before its reference): then no image is read.
    live = LiveMeasures(folder, ["ddim", "lightning"], list(PROMPTS[:2]), 2, PocketScorer())
    for cell in reversed(cell_order(2, ["ddim", "lightning"], (0, 1))):
        live.add(cell, folder.read_image(cell.id))
    for name in made:
        (copy / name).unlink()

    def no_image(self: BenchFolder, cell_id: str) -> None:
        raise AssertionError(f"the report read {cell_id}'s image")

    monkeypatch.setattr(BenchFolder, "read_image", no_image)
    write_bench_report(folder, settings, PocketScorer(), not_measured="", known=live.known)
    assert files() == made


def test_report_json_has_compare_s_device_type_dtype_and_model_files(finished: Path, tmp_path: Path) -> None:
    """The keys `fewstep compare` writes about where its images came from, with the same values for the
    same model and device: from the cells' records, each of which keeps them."""
    compared = tmp_path / "compared"
    command = ["compare", "--prompt", PROMPTS[0], "--modes", "ddim", "--steps", "ddim=2", "--threads", "1"]
    assert main([*command, "--out", str(compared)]) == EXIT_OK
    expected = json.loads((compared / "report.json").read_text())
    report = json.loads((finished / "report.json").read_text())
    assert expected["device_type"] == "cpu" and expected["dtype"] == "float32" and expected["model_files"]
    for key in ("device_type", "dtype", "model_files"):
        assert report[key] == expected[key], key
    record = json.loads((finished / "cells" / "p00000-ddim-s0.json").read_text())
    assert record["model_files"] == expected["model_files"] and record["dtype"] == "float32"


def test_a_rerun_with_other_settings_is_refused_and_writes_nothing(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _cells(finished)
    prompts = finished.parent / "prompts.csv"
    changed = ["bench", "--prompts", str(prompts), "--out", str(finished), *FAST[:4], "--seeds", "3"]
    assert main(changed) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "other settings (seeds)" in error and "--overwrite" in error
    assert _cells(finished) == before
    foreign = finished.parent / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(_bench(prompts, foreign)) == EXIT_BAD_INPUT
    assert "not a Fewstep bench" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_resuming_after_a_kill_runs_every_cell_once_and_keeps_finished_ones(tmp_path: Path) -> None:
    prompts = _prompts(tmp_path, count=3)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "engine.cli", *_bench(prompts, out)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "cells").glob("*.json"))) >= 4 if (out / "cells").is_dir() else False:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the bench ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    finished = {n: b for n, b in _cells(out).items() if n.endswith(".json")}
    finished |= {n[:-5] + ".png": (out / "cells" / (n[:-5] + ".png")).read_bytes() for n in list(finished)}
    assert 4 <= len(finished) // 2 < 12
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_OK, done.stderr
    assert "already done" in done.stderr
    after = _cells(out)
    assert sorted(after) == sorted(
        f"p{p:05d}-{m}-s{s}.{ext}"
        for p in range(3)
        for m in ("ddim", "lightning")
        for s in (0, 1)
        for ext in ("json", "png")
    )
    assert {n: after[n] for n in finished} == finished  # finished cells untouched, byte for byte
    assert not [p for p in out.rglob("*") if p.name.endswith((".part", ".tmp"))]
    report = json.loads((out / "report.json").read_text())
    assert report["cells"] == 12 and sum(m["images"] for m in report["trilemma"]["modes"].values()) == 12


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium to open the page in (apt-get install -y chromium; .ci/run installs it)")
    return found


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


def test_the_page_opens_in_a_headless_browser_with_its_images(finished: Path, tmp_path: Path) -> None:
    page = (finished / "index.html").resolve()
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    dom = _browser(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<svg" in dom.stdout and "The trilemma" in dom.stdout
    assert dom.stdout.count("<circle") >= 2  # a point per mode in the plot
    links = [part.split('"', 1)[0] for part in dom.stdout.split('<a href="')[1:]]
    assert len(links) == 8 and all((finished / link).is_file() for link in links)
    shot = tmp_path / "page.png"
    done = _browser(tmp_path, f"--screenshot={shot}", "--window-size=1000,900", page.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    from PIL import Image

    with Image.open(shot) as picture:
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, plot and thumbnails drawn, not a blank page


def test_with_clip_adherence_is_clip_score_and_diversity_is_measured_in_its_space(tmp_path: Path) -> None:
    from tests.engine.outputs.test_bench_metrics import _tiny_clip

    _tiny_clip(tmp_path)
    out = tmp_path / "out"
    assert main([*_bench(_prompts(tmp_path, count=2), out), "--clip", str(tmp_path / "clip")]) == EXIT_OK
    trilemma = json.loads((out / "report.json").read_text())["trilemma"]
    assert trilemma["adherence"]["metric"] == "clip score"
    for values in trilemma["modes"].values():
        assert 0 <= values["adherence"] <= 100 and values["clip_diversity"] is not None


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    bad = [
        ["--modes", "ddim,nope"],
        ["--seeds", "0"],
        ["--clip", str(tmp_path / "no-clip-here")],
        ["--lcm-unet", str(tmp_path)],
    ]
    for extra in bad:
        assert main(["bench", "--prompts", "pocket", "--out", str(out), *extra]) == EXIT_BAD_INPUT, extra
        assert capsys.readouterr().err.strip().count("\n") == 0
    (tmp_path / "empty.txt").write_text("\n \n")
    assert main(["bench", "--prompts", str(tmp_path / "empty.txt"), "--out", str(out)]) == EXIT_BAD_INPUT
    assert "no prompts" in capsys.readouterr().err
    assert not out.exists()
