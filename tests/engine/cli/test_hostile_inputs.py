"""Hostile files, paths and values (issue 14): each is refused in one line, before anything opens,
loads or writes; nothing blocks on a FIFO. What could hang runs in a subprocess with a timeout, so a
regression fails instead of freezing the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, main
from engine.cli.folder_lock import FolderBusyError, folder_lock
from engine.cli.terminal_progress import TerminalProgress, size_warning
from engine.contract.errors import ModelInputError, RequestError
from engine.contract.limits import MAX_PROMPT_CHARS
from engine.contract.modes import ModelRole
from engine.contract.request import GenerationRequest, ModeResult, ModeSettings, Timings
from engine.contract.validation import check_prompt_text, parse_guidance, parse_steps, parse_style_weight
from engine.files.model_files import FileKind, ModelFile, check_role, check_vae
from engine.outputs.atomic import atomic_write_text, remove_stale_parts, restore_interrupted_swap
from engine.outputs.comparison_files import RunContext, png_parameters_for
from engine.outputs.infotext import parse_infotext
from tests.conftest import REPO_ROOT

HANG_LIMIT_S = 60  # far above any answer (under a second); only a hang reaches it


def run_isolated(code: str) -> str:
    """Run Python code in a fresh process; a hang fails the test after HANG_LIMIT_S."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=HANG_LIMIT_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- numbers and text -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["--4", "²", "٣", "nan", "1_0", "", " 4", "0", "201", "4.0", "1e2"])
def test_steps_take_plain_digits_in_range_only(text: str) -> None:
    with pytest.raises(RequestError, match="steps must be a whole number from 1 to 200"):
        parse_steps(text, f"--steps lcm={text}")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e30", "1e1", "-1", "30.5", "7,5", "", "٣"])
def test_guidance_takes_finite_plain_numbers_in_range_only(text: str) -> None:
    with pytest.raises(RequestError, match="guidance must be"):
        parse_guidance(text, f"--guidance lcm={text}")


@pytest.mark.parametrize("text", ["nan", "inf", "1e30", "10.5", "-11", "0x1"])
def test_style_weights_are_finite_and_within_the_documented_range(text: str) -> None:
    with pytest.raises(RequestError, match="style weight must be"):
        parse_style_weight(text, f"--lora s.safetensors:{text}")


def test_good_numbers_parse() -> None:
    assert parse_steps("4", "x") == 4
    assert parse_guidance("7.5", "x") == 7.5 and parse_guidance(".5", "x") == 0.5
    assert parse_style_weight("-0.8", "x") == -0.8


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a cat \udcff", "not valid UTF-8"),  # what undecodable argv bytes become (PEP 383)
        ("a cat\x01", "control character"),
        ("a cat\r", "control character"),
        ("x" * (MAX_PROMPT_CHARS + 1), "shorten it"),
    ],
)
def test_prompts_that_cannot_be_written_and_read_back_are_refused(text: str, says: str) -> None:
    with pytest.raises(RequestError, match=says):
        check_prompt_text(text)
    request = GenerationRequest(prompt="ok", negative_prompt=text, modes=(ModeSettings(mode="lcm"),))
    with pytest.raises(RequestError, match="the negative prompt"):
        request.validate()  # the GUI's path: its requests are validated before they are queued


def test_tabs_and_line_breaks_are_fine() -> None:
    check_prompt_text("a cat\n\tin a hat")


def test_the_writers_largest_text_is_what_the_reader_accepts() -> None:
    """Both prompts at the limit, every field filled: the PNG text reads back exactly."""
    prompt = ("a red circle, " * MAX_PROMPT_CHARS)[:MAX_PROMPT_CHARS]
    negative = ("blur: fog\n" * MAX_PROMPT_CHARS)[:MAX_PROMPT_CHARS]
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, modes=(ModeSettings(mode="lcm"),))
    request.validate()
    result = ModeResult(
        mode="lcm",
        seed=2**63 - 1,
        steps=200,
        guidance=30.0,
        scheduler="LCMScheduler",
        timesteps=(999.0,),
        timings=Timings(text_encoding=0, switch=0, denoising=0, per_step=(), decode=0),
        image=np.zeros((8, 8, 3), np.uint8),
        styles=(("style-0", -10.0),),
    )
    context = RunContext(model_label="m" * 255, device="cpu", style_names={"style-0": "s" * 255})
    restored = parse_infotext(png_parameters_for(result, request, 4096, 4096, context))
    assert restored.prompt == prompt and restored.negative_prompt == negative
    assert restored.seed == 2**63 - 1 and restored.steps == 200 and restored.guidance == 30.0


# --- special files: FIFOs, devices, symlink loops ---------------------------------------------------


def test_a_fifo_given_as_a_model_is_refused_at_once_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "compare", "--prompt", "x", "--base", str(fifo),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=HANG_LIMIT_S,
    )  # fmt: skip
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.count("\n") == 1 and "FIFO (named pipe)" in done.stderr
    assert not (tmp_path / "out").exists()


def test_models_folder_scan_lists_a_fifo_and_survives_a_symlink_loop(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "deeper").mkdir(parents=True)
    os.mkfifo(models / "pipe.safetensors")
    os.mkfifo(models / "deeper" / "config.json")  # read by the folder classifier
    (models / "deeper" / "loop").symlink_to(models, target_is_directory=True)
    (models / "self").symlink_to(models / "self")  # a link to itself
    out = run_isolated(
        f"""
        from pathlib import Path
        from engine.files.model_scan import scan_models
        for item in scan_models(Path({str(models)!r}), depth=8):
            print(item)
        """
    )
    assert "pipe.safetensors" in out and "FIFO" in out
    assert out.count("pipe.safetensors") == 1  # the loop did not scan the folder twice


def test_fifos_and_devices_are_never_opened_by_the_gui_readers(tmp_path: Path) -> None:
    """The dropped PNG, a history record and the settings file: each read refuses a FIFO."""
    (tmp_path / "history").mkdir()
    for name in ("x.png", "history/20260101-000000-j1.json", "settings.json"):
        os.mkfifo(tmp_path / name)
    out = run_isolated(
        f"""
        from pathlib import Path
        from engine.outputs.png_info import read_settings
        from engine.outputs.png_text import InfotextError
        from gui.state.image_store import load_history
        from gui.state.settings import load_settings
        root = Path({str(tmp_path)!r})
        for png in (root / "x.png", Path("/dev/zero")):
            try:
                read_settings(png)
            except InfotextError as exc:
                print("png:", exc)
        print("history:", load_history(root))
        print("settings:", load_settings(root / "settings.json").problem)
        """
    )
    assert "png: cannot read x.png: it is a FIFO (named pipe)" in out
    assert "png: cannot read zero: it is a character device" in out
    assert "history: ([], 1)" in out  # counted as unreadable, skipped
    assert "settings: cannot read settings file" in out and "FIFO" in out


def test_a_device_given_as_a_model_is_refused() -> None:
    with pytest.raises(ModelInputError, match="character device"):
        check_role(ModelRole.LCM_LORA, Path("/dev/zero"))


# --- pickles --------------------------------------------------------------------------------------


def pickled_copy(folder: Path, dest: Path, *, keep_safetensors: bool = False) -> Path:
    """A copy of a diffusers weight folder whose weights are a torch pickle (.bin), as old repos ship."""
    shutil.copytree(folder, dest)
    for weights in dest.glob("*.safetensors"):
        torch.save(load_file(str(weights)), weights.with_suffix(".bin"))
        if not keep_safetensors:
            weights.unlink()
    return dest


def test_a_folder_of_pickled_weights_is_refused_like_a_ckpt_file(
    tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    lcm = pickled_copy(tiny_models.lcm_unet, tmp_path / "lcm")
    with pytest.raises(ModelInputError, match="never unpickles"):
        check_role(ModelRole.LCM_UNET, lcm)
    vae = pickled_copy(tiny_models.base / "vae", tmp_path / "vae")
    with pytest.raises(ModelInputError, match="never unpickles"):
        check_vae(vae)
    base = tmp_path / "base"
    shutil.copytree(tiny_models.base, base)
    shutil.rmtree(base / "unet")
    pickled_copy(tiny_models.base / "unet", base / "unet")
    with pytest.raises(ModelInputError, match="never unpickles"):
        check_role(ModelRole.BASE, base)
    # Real repositories ship both: the .safetensors ones are used, the pickles never opened.
    both = pickled_copy(tiny_models.lcm_unet, tmp_path / "both", keep_safetensors=True)
    assert check_role(ModelRole.LCM_UNET, both).kind is FileKind.LCM_UNET


def test_cli_refuses_a_pickled_lcm_unet_folder_in_one_line(
    tiny_models: TinyModelSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lcm = pickled_copy(tiny_models.lcm_unet, tmp_path / "lcm")
    out = tmp_path / "out"
    args = ["compare", "--prompt", "x", "--base", str(tiny_models.base), "--lcm-unet", str(lcm)]
    assert main([*args, "--out", str(out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never unpickles" in err
    assert not out.exists()


def test_the_loaders_themselves_never_fall_back_to_pickles(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    """Past the file checks, the loaders still ask for safetensors only (use_safetensors=True)."""
    from engine.runtime.loading import load_lcm_unet, load_vae

    lcm = pickled_copy(tiny_models.lcm_unet, tmp_path / "lcm")
    with pytest.raises(ModelInputError, match="cannot load this UNet"):
        load_lcm_unet(ModelFile(lcm, FileKind.LCM_UNET), torch.device("cpu"), torch.float32)
    vae = pickled_copy(tiny_models.base / "vae", tmp_path / "vae")
    with pytest.raises(ModelInputError, match="cannot load this VAE"):
        load_vae(ModelFile(vae, FileKind.VAE_FOLDER), tmp_path, torch.device("cpu"), torch.float32)


# --- --out, locks, leftovers ---------------------------------------------------------------------


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_out_is_checked_before_any_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    compare = ["compare", "--prompt", "x", "--out"]
    assert "--out is empty" in refused([*compare, ""], capsys)
    assert "which is a file" in refused([*compare, str(a_file / "x")], capsys)
    assert "under /proc" in refused([*compare, "/proc/self/x"], capsys)
    assert "under /sys" in refused([*compare, "/sys/x"], capsys)
    assert "longer than 255 bytes" in refused([*compare, str(tmp_path / ("é" * 130))], capsys)
    assert "is a file; compare writes a folder" in refused([*compare, str(a_file)], capsys)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert "not a Fewstep comparison" in refused([*compare, str(tmp_path / "mine")], capsys)
    existing = tmp_path / "old.png"
    existing.write_bytes(b"old")
    err = refused(["generate", "--mode", "lcm", "--prompt", "x", "--out", str(existing)], capsys)
    assert "already exists" in err and "--overwrite" in err
    (tmp_path / "new.json").write_text("{}")  # generate writes new.png and its sidecar new.json
    err = refused(["generate", "--mode", "lcm", "--prompt", "x", "--out", str(tmp_path / "new.png")], capsys)
    assert "new.json already exists" in err
    assert existing.read_bytes() == b"old" and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "mine", "new.json", "old.png"]


def test_device_and_dtype_spelling_is_checked_before_torch(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", "--prompt", "x", "--out", "/nonexistent-but-fine/o"]
    assert "unknown device 'gpu'" in refused([*base, "--device", "gpu"], capsys)
    assert "unknown dtype 'float8'" in refused([*base, "--dtype", "float8"], capsys)


def test_a_second_writer_to_one_folder_is_told_another_is_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    with folder_lock(out):
        with pytest.raises(FolderBusyError), folder_lock(out):
            pass
        err = refused(
            ["compare", "--prompt", "x", "--steps", "ddim=1", "--modes", "ddim", "--out", str(out)], capsys
        )
        assert "another Fewstep run is writing" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the lock file goes with the lock
    with folder_lock(out):  # free again
        pass


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".grid.png.{dead.pid}.abc123.part"
    stale.write_bytes(b"half")
    stale_folder = tmp_path / f".cmp.{dead.pid}.xyz.tmp"
    stale_folder.mkdir()
    live = tmp_path / f".grid.png.{os.getpid()}.def456.part"
    live.write_bytes(b"being written")
    atomic_write_text(tmp_path / "kept.txt", "whole")
    assert remove_stale_parts(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "kept.txt"])


def test_a_folder_left_aside_by_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".cmp.{dead.pid}.old.part"
    aside.mkdir()
    (aside / "report.json").write_text("{}")
    assert restore_interrupted_swap(tmp_path / "cmp")
    assert (tmp_path / "cmp" / "report.json").exists() and not aside.exists()
    assert not restore_interrupted_swap(tmp_path / "cmp")  # nothing missing: nothing done


# --- progress ----------------------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self, tty: bool) -> None:
        self.text, self.tty = "", tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def test_progress_counts_steps_on_a_terminal_and_warns_of_a_long_run() -> None:
    from engine.contract.request import Progress

    times = iter([0.0, 30.0])  # started at 0; the first step done at 30 s
    said: list[str] = []
    terminal = FakeTerminal(tty=True)
    progress = TerminalProgress(terminal, 8, said.append, clock=lambda: next(times))  # type: ignore[arg-type]
    for step in (1, 2):
        progress(Progress(mode="ddim", seed=0, step=step, total=8))
    assert "ddim seed 0: step 2/8" in terminal.text
    assert said == ["about 4 min to go (30.0 s for the first step, 7 more); Ctrl+C stops it"]
    quiet = FakeTerminal(tty=False)
    TerminalProgress(quiet, 8, said.append, clock=iter([0.0, 0.1]).__next__)(  # type: ignore[arg-type]
        Progress(mode="ddim", seed=0, step=1, total=8)
    )
    assert quiet.text == "" and len(said) == 1  # not a terminal, and short: silent


def test_a_huge_size_on_the_cpu_is_warned_about_before_it_runs() -> None:
    assert size_warning("cpu", 4096, 4096, (1024, 1024)) is not None
    assert size_warning("cuda", 4096, 4096, (1024, 1024)) is None
    assert size_warning("cpu", 1024, 1024, (1024, 1024)) is None


def test_compare_reruns_into_its_own_folder_and_keeps_a_foreign_one(tmp_path: Path) -> None:
    from engine.cli.targets import comparison_target_problem

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("report.json", "grid.png", "ddim.png", "reproduce.py"):
        (earlier / name).write_text("x")
    assert comparison_target_problem(earlier, overwrite=False) is None  # an earlier comparison: replaced
    (earlier / "notes.txt").write_text("mine")
    assert "not a Fewstep comparison" in (comparison_target_problem(earlier, overwrite=False) or "")
    assert comparison_target_problem(earlier, overwrite=True) is None
