"""Recovery at start: images a killed run saved without its history record are adopted, and dead
writers' temporary files removed; never while another window uses the folder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Timings
from engine.outputs.comparison_files import RunContext
from engine.outputs.run_writer import RunWriter
from gui.state.image_store import load_history
from gui.state.recovery import RECOVERED, OutputClaim, recover_output_folder

CONTEXT = RunContext(model_label="tiny", device="cpu")
REQUEST = GenerationRequest(
    prompt="a lighthouse\nat dusk",
    negative_prompt="fog",
    seeds=(7,),
    modes=(ModeSettings(mode="lcm", steps=2), ModeSettings(mode="ddim", steps=3)),
)


def result(mode: str, steps: int) -> ModeResult:
    return ModeResult(
        mode=mode,
        seed=7,
        steps=steps,
        guidance=1.5,
        scheduler="X",
        timesteps=(999.0,),
        timings=Timings(text_encoding=0.1, switch=0.0, denoising=0.2, per_step=(0.1,), decode=0.1),
        image=np.full((16, 16, 3), 9, dtype=np.uint8),
    )


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_images_without_a_record_are_adopted_and_dead_parts_removed(tmp_path: Path) -> None:
    finished = RunWriter(tmp_path, "20261129-101500-j1", REQUEST, CONTEXT)
    finished.save(result("lcm", 2))
    finished.finish("finished")
    # A run killed after two images, before its record; the second lost its sidecar too.
    killed = RunWriter(tmp_path, "20261129-101600-j2", REQUEST, CONTEXT)
    killed.save(result("lcm", 2))
    second = killed.save(result("ddim", 3))
    second.sidecar.unlink()
    part = second.png.with_name(f".{second.png.name}.{dead_pid()}.abcd.part")
    part.write_bytes(b"half a png")
    recovery = recover_output_folder(tmp_path)
    assert (recovery.removed_parts, recovery.adopted_images, recovery.unreadable_images) == (1, 2, 0)
    assert not part.exists()
    records, damaged = load_history(tmp_path)
    assert damaged == 0 and [r.status for r in records] == [RECOVERED, "finished"]
    adopted = records[0]
    assert adopted.request.prompt == "a lighthouse\nat dusk" and adopted.request.negative_prompt == "fog"
    assert [(i.mode, i.seed, i.steps) for i in adopted.images] == [("ddim", 7, 3), ("lcm", 7, 2)]
    assert all(i.png.is_file() for i in adopted.images)
    assert recover_output_folder(tmp_path).adopted_images == 0  # once only


def test_no_recovery_while_another_window_uses_the_folder(tmp_path: Path) -> None:
    first, second = OutputClaim(), OutputClaim()
    assert first.take(tmp_path) is not None  # alone: recovered (nothing to do)
    # The first window is saving a run right now: its record is not written yet.
    RunWriter(tmp_path, "20261129-101600-j2", REQUEST, CONTEXT).save(result("lcm", 2))
    assert second.take(tmp_path) is None
    assert load_history(tmp_path) == ([], 0)
    first.release()
    second.release()
    third = OutputClaim()
    recovery = third.take(tmp_path)
    assert recovery is not None and recovery.adopted_images == 1
    third.release()


def test_an_adopted_run_keeps_its_eta(tmp_path: Path) -> None:
    """TCD's eta is in each image's sidecar: a run adopted after a kill restores it as the record would."""
    request = GenerationRequest(
        prompt="a circle", seeds=(7,), modes=(ModeSettings(mode="tcd", steps=4, eta=0.6),)
    )
    killed = RunWriter(tmp_path, "20261129-101700-j3", request, CONTEXT)
    killed.save(replace(result("tcd", 4), eta=0.6))
    assert recover_output_folder(tmp_path).adopted_images == 1
    records, damaged = load_history(tmp_path)
    assert damaged == 0
    (settings,) = records[0].request.modes
    assert (settings.mode, settings.eta) == ("tcd", 0.6)
