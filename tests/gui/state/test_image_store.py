"""Saving: whole files only, never over an earlier image; history entries read back defensively."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext
from engine.outputs.png_info import read_settings as restore_from_png
from engine.outputs.run_writer import HISTORY_FOLDER, RunWriter, add_trilemma
from engine.outputs.trilemma import Trilemma, TrilemmaAccumulator
from gui.state.image_store import RecordError, RunStyle, load_history, read_run_record

CONTEXT = RunContext(model_label="tiny", device="cpu")
REQUEST = GenerationRequest(prompt="a red circle", seeds=(7,), modes=(ModeSettings(mode="lcm", steps=2),))


def result(value: int = 0) -> ModeResult:
    return ModeResult(
        mode="lcm",
        seed=7,
        steps=2,
        guidance=8.0,
        scheduler="LCMScheduler",
        timesteps=(999.0, 499.0),
        timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.1, 0.1), decode=0.1),
        image=np.full((16, 16, 3), value, dtype=np.uint8),
    )


def test_the_same_name_twice_never_overwrites(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "20260101-000000-j1", REQUEST, CONTEXT)
    first, second = writer.save(result(10)), writer.save(result(200))
    assert first.png != second.png and first.sidecar != second.sidecar
    assert first.png.read_bytes() != second.png.read_bytes()
    assert not list(tmp_path.rglob("*.part"))  # no temporary file left behind
    sidecar = json.loads(first.sidecar.read_text())
    assert sidecar["prompt"] == "a red circle" and sidecar["file"] == first.png.name
    assert sidecar["seconds"]["denoising"] == 0.2
    restored = restore_from_png(first.png)
    assert (restored.prompt, restored.mode, restored.steps, restored.seed) == ("a red circle", "lcm", 2, 7)


def test_history_round_trip_and_damaged_entries(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "20260101-000000-j1", REQUEST, CONTEXT)
    saved = writer.save(result())
    record_path = writer.finish("finished")
    assert record_path is not None
    history = tmp_path / HISTORY_FOLDER
    (history / "20260102-000000-j2.json").write_text("{ damaged")
    escaping = json.loads(record_path.read_text())
    escaping["images"][0]["png"] = "../../etc/passwd"
    (history / "20260103-000000-j3.json").write_text(json.dumps(escaping))
    records, damaged = load_history(tmp_path)
    assert damaged == 2
    assert len(records) == 1
    record = records[0]
    assert record.request == REQUEST
    assert record.images[0].png == saved.png.resolve()
    assert record.status == "finished"


def test_run_records_name_their_styles_by_file(tmp_path: Path) -> None:
    watercolor, ink = tmp_path / "watercolor.safetensors", tmp_path / "ink.safetensors"
    request = replace(REQUEST, style_weights=(("style-0", 0.8), ("style-1", 0.0)))
    styled = replace(result(), styles=(("style-0", 0.8),))
    writer = RunWriter(
        tmp_path, "20260101-000000-j1", request, CONTEXT, style_files={"style-0": watercolor, "style-1": ink}
    )
    writer.save(styled)
    path = writer.finish("finished")
    assert path is not None
    record = read_run_record(path, tmp_path)
    assert record.styles == (RunStyle(path=watercolor, weight=0.8), RunStyle(path=ink, weight=0.0))
    assert record.images[0].styles == (RunStyle(path=watercolor, weight=0.8),)

    # A record of the built-in model, which takes no styles, or one written before styles were recorded.
    builtin_writer = RunWriter(tmp_path, "20260101-000000-j2", REQUEST, CONTEXT)
    builtin_writer.save(result())
    builtin = builtin_writer.finish("finished")
    assert builtin is not None and read_run_record(builtin, tmp_path).styles is None
    data = json.loads(path.read_text())
    del data["styles"]
    for image in data["images"]:
        del image["styles"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    record = read_run_record(older, tmp_path)
    assert record.styles is None and record.images[0].styles == ()

    data["styles"] = [{"file": "", "weight": 1.0}]
    older.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="style"):
        read_run_record(older, tmp_path)


def trilemma_of_two_modes() -> Trilemma:
    accumulator = TrilemmaAccumulator(["lcm", "ddim"])
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    accumulator.add("lcm", 7, image, 0.5)
    accumulator.add("ddim", 7, image[::-1].copy(), 2.0)
    return accumulator.result()


def test_a_record_keeps_the_trilemma_and_older_records_still_load(tmp_path: Path) -> None:
    trilemma = trilemma_of_two_modes()
    writer = RunWriter(tmp_path, "20260101-000000-j1", REQUEST, CONTEXT)
    writer.save(result())
    path = writer.finish("finished")
    assert path is not None and read_run_record(path, tmp_path).trilemma is None  # not measured yet
    add_trilemma(path, trilemma)  # the GUI measures it after the record is written
    restored = read_run_record(path, tmp_path).trilemma
    assert restored is not None
    assert (restored.reference, restored.reference_reason, restored.seeds) == (
        trilemma.reference,
        trilemma.reference_reason,
        trilemma.seeds,
    )
    assert [r.mode for r in restored.rows] == ["lcm", "ddim"]
    for ours, theirs in zip(restored.rows, trilemma.rows, strict=True):
        assert ours.images == theirs.images
        assert ours.as_json() == theirs.as_json()  # the numbers, as rounded in report.json
    # Written at once when already measured: the same key.
    at_once = RunWriter(tmp_path, "20260101-000000-j2", REQUEST, CONTEXT)
    at_once.save(result())
    second = at_once.finish("finished", trilemma)
    assert second is not None
    assert json.loads(second.read_text())["trilemma"] == json.loads(path.read_text())["trilemma"]
    # An older record, without it, loads; a damaged one is refused.
    data = json.loads(path.read_text())
    del data["trilemma"]
    path.write_text(json.dumps(data))
    assert read_run_record(path, tmp_path).trilemma is None
    data["trilemma"] = {"modes": {"lcm": {"speed_up": "fast"}}, "images": {}, "seeds": [7]}
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="trilemma"):
        read_run_record(path, tmp_path)


def test_a_records_eta_comes_back_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    request = replace(REQUEST, modes=(ModeSettings(mode="lcm", steps=2), ModeSettings(mode="tcd", eta=0.7)))
    writer = RunWriter(tmp_path, "20260101-000000-j1", request, CONTEXT)
    writer.save(result())
    path = writer.finish("finished")
    assert path is not None
    data = json.loads(path.read_text())
    assert "eta" not in data["modes"][0]  # only a mode given one says it
    assert read_run_record(path, tmp_path).request == request
    for bad in ("0.7", True, 1.5):
        data["modes"][1]["eta"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(RecordError):
            read_run_record(path, tmp_path)
