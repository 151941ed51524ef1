"""The field's files (issue 21) recognised from header and name: every fixture of
devtools/field_fixtures.py, the three LoRAs that share one name (folder or repository id decides, else
the user says which), and the pickle refused with the safetensors file to use instead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devtools.field_fixtures import FieldSet, build_field_set
from devtools.hub_cache_fixture import add_to_hub_cache
from devtools.tiny_model import TinyModelSet
from engine.cli import EXIT_BAD_INPUT, main
from engine.contract.errors import ModelInputError
from engine.contract.modes import MODES
from engine.files.model_files import FileKind, check_role, check_style_lora, inspect_path
from engine.files.model_scan import Refused, scan_models

LORA_FILE = "pytorch_lora_weights.safetensors"
REFUSED = "refused"

# Each fixture: the kind it loads as, the role it is recognised for, and the step count its name gives
# where its mode runs the file's own count.
EXPECTED: dict[str, tuple[FileKind | str, str | None, int | None]] = {
    "tcd": (FileKind.DISTILLATION_LORA, "tcd-lora", None),  # its folder, TCD-SDXL-LoRA, decides
    "hyper-lora-1step": (FileKind.DISTILLATION_LORA, "hyper-1step-lora", None),  # 1 to 8 steps: free
    "hyper-lora-2steps": (FileKind.DISTILLATION_LORA, "hyper-lora", 2),
    "hyper-lora-4steps": (FileKind.DISTILLATION_LORA, "hyper-lora", 4),
    "hyper-lora-8steps": (FileKind.DISTILLATION_LORA, "hyper-lora", 8),
    "hyper-lora-8steps-cfg": (FileKind.DISTILLATION_LORA, "hyper-cfg-lora", 8),
    "hyper-lora-12steps-cfg": (FileKind.DISTILLATION_LORA, "hyper-cfg-lora", 12),
    "dmd2-lora-4step": (FileKind.DISTILLATION_LORA, "dmd2-lora", None),  # its mode runs [999, 749, 499, 249]
    "pcm-smallcfg-2step": (FileKind.DISTILLATION_LORA, "pcm-lora", 2),
    "pcm-smallcfg-4step": (FileKind.DISTILLATION_LORA, "pcm-lora", 4),
    "pcm-smallcfg-8step": (FileKind.DISTILLATION_LORA, "pcm-lora", 8),
    "pcm-smallcfg-16step": (FileKind.DISTILLATION_LORA, "pcm-lora", 16),
    "pcm-normalcfg-4step": (FileKind.DISTILLATION_LORA, "pcm-normalcfg-lora", 4),
    "pcm-normalcfg-8step": (FileKind.DISTILLATION_LORA, "pcm-normalcfg-lora", 8),
    "pcm-normalcfg-16step": (FileKind.DISTILLATION_LORA, "pcm-normalcfg-lora", 16),
    "pcm-lcmlike": (FileKind.DISTILLATION_LORA, "pcm-lcmlike-lora", None),  # PCM's, not LCM's
    "flash": (FileKind.DISTILLATION_LORA, "flash-lora", None),  # its folder, flash-sdxl, decides
    "hyper-unet-1step": (FileKind.UNET_STATE_DICT, "hyper-unet", None),
    "dmd2-unet-4step": (FileKind.UNET_STATE_DICT, "dmd2-unet", 4),
    "dmd2-unet-1step-bin": (REFUSED, None, None),
    "turbo-folder": (FileKind.SDXL_FOLDER, "turbo", None),  # loads as a pipeline, is Turbo's
    "turbo-single-file": (FileKind.SDXL_SINGLE_FILE, "turbo", None),
}


@pytest.fixture(scope="module")
def field(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> FieldSet:
    return build_field_set(tiny_models, tmp_path_factory.mktemp("field") / "models")


def recognised(path: Path) -> tuple[FileKind | str, str | None, int | None]:
    try:
        info = inspect_path(path)
    except ModelInputError:
        return (REFUSED, None, None)
    return (info.kind, info.role, info.steps)


def test_every_fixture_is_listed(field: FieldSet) -> None:
    assert set(EXPECTED) == set(field.files)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_is_recognised_by_header_and_name(name: str, field: FieldSet) -> None:
    assert recognised(field[name].path) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e[1] is not None))
def test_each_recognised_file_enables_its_modes(name: str, field: FieldSet) -> None:
    info = inspect_path(field[name].path)
    assert info.enables and all(MODES[mode].role == info.role for mode in info.enables)
    assert check_role(str(info.role), info.path).role == info.role  # the role it names takes it


def test_a_renamed_lightning_file_is_no_field_file(tiny_models: TinyModelSet) -> None:
    info = inspect_path(tiny_models.lightning_lora)
    assert (info.kind, info.role, info.enables) == (FileKind.LIGHTNING_LORA, None, ("lightning-lora",))


# ---------------------------------------------------------------------------------------------
# LCM-LoRA, TCD and Flash ship under one name: the place decides, else the user


def source_of(name: str, field: FieldSet, tiny_models: TinyModelSet) -> Path:
    return tiny_models.lcm_lora if name == "lcm-lora" else field[name].path


SAME_NAME_ROLES = {"lcm-lora": "lcm-lora", "tcd": "tcd-lora", "flash": "flash-lora"}


def loose_copy(source: Path, folder: Path) -> Path:
    path = folder / LORA_FILE
    path.parent.mkdir(parents=True)
    shutil.copyfile(source, path)
    return path


@pytest.mark.parametrize(
    ("name", "folder"),
    [("lcm-lora", "lcm-lora-sdxl"), ("tcd", "TCD-SDXL-LoRA"), ("flash", "flash-sdxl")],
)
def test_the_folder_name_decides(
    name: str, folder: str, field: FieldSet, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    # The same bytes in a folder named for another of the three: the folder is all that decides.
    source = source_of("tcd" if name != "tcd" else "lcm-lora", field, tiny_models)
    info = inspect_path(loose_copy(source, tmp_path / "models" / folder))
    assert info.natural_role == SAME_NAME_ROLES[name]
    assert info.decided_by == "folder name"


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("lcm-lora", "latent-consistency/lcm-lora-sdxl"),
        ("tcd", "h1t/TCD-SDXL-LoRA"),
        ("flash", "jasperai/flash-sdxl"),
    ],
)
def test_the_repository_id_decides_in_the_hugging_face_cache(
    name: str, repo: str, field: FieldSet, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    source = source_of("tcd" if name != "tcd" else "lcm-lora", field, tiny_models)
    snapshot = add_to_hub_cache(tmp_path / "hub", repo, {LORA_FILE: source})
    for path in (snapshot, snapshot / LORA_FILE):  # the repository, and its file
        info = inspect_path(path)
        assert (info.natural_role, info.decided_by) == (SAME_NAME_ROLES[name], "repository id")


@pytest.mark.parametrize("name", sorted(SAME_NAME_ROLES))
def test_neither_deciding_the_user_says_which(
    name: str, field: FieldSet, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    loose = loose_copy(source_of(name, field, tiny_models), tmp_path / "downloads")
    cached = add_to_hub_cache(
        tmp_path / "hub", "someone/sdxl-files", {LORA_FILE: source_of(name, field, tiny_models)}
    )
    for path in (loose, cached / LORA_FILE):
        info = inspect_path(path)
        assert info.kind is FileKind.UNDECIDED_LORA  # not a style LoRA, as a loose copy was before
        assert info.describe() == "a distillation LoRA: LCM-LoRA, TCD or Flash; say which"
        assert info.enables == ()
        # Said on the CLI (--model ROLE=PATH) or in the Models tab (check_role either way): it is that kind.
        for role in SAME_NAME_ROLES.values():
            said = check_role(role, path)
            assert said.natural_role == role and said.decided_by == "user"
            assert said.enables == tuple(m for m, s in MODES.items() if s.role == role)
        assert check_style_lora(path).kind is FileKind.UNDECIDED_LORA  # still usable as a style


def test_the_users_word_stands_over_a_folder_but_not_over_a_name(field: FieldSet, tmp_path: Path) -> None:
    by_folder = check_role("flash-lora", field["tcd"].path)
    assert by_folder.role == "flash-lora"
    with pytest.raises(ModelInputError) as refused:
        check_role("hyper-lora", field["dmd2-lora-4step"].path)
    assert "this is a DMD2 LoRA, which --model dmd2-lora takes" in str(refused.value)


def test_a_style_lora_with_a_name_of_its_own_stays_a_style(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    style = tmp_path / "watercolor_v2.safetensors"
    shutil.copyfile(tiny_models.lightning_lora, style)
    assert inspect_path(style).kind is FileKind.STYLE_LORA


@pytest.mark.parametrize(
    "name", ["dreamshaperXL_turboDpmppSDE.safetensors", "juggernautXL_turbo.safetensors"]
)
def test_a_community_checkpoint_that_says_turbo_is_a_base(name: str, field: FieldSet, tmp_path: Path) -> None:
    # Merges named "turbo" run as SDXL bases (their cards: DPM++ SDE, 4 to 8 steps, CFG 2), not as
    # SDXL-Turbo's 1-step pipeline; only Stability's own names (sdxl-turbo, sd_xl_turbo) say Turbo.
    merge = tmp_path / name
    shutil.copyfile(field["turbo-single-file"].path, merge)
    info = inspect_path(merge)
    assert (info.kind, info.role, info.natural_role) == (FileKind.SDXL_SINGLE_FILE, None, "base")
    assert "turbo" not in info.enables and "ddim" in info.enables
    assert check_role("turbo", merge).natural_role == "turbo"  # the artist may still say it is Turbo


# ---------------------------------------------------------------------------------------------
# A pickle is refused with the safetensors file to use instead


def test_the_dmd2_pickles_name_their_safetensors(field: FieldSet, tmp_path: Path) -> None:
    one_step = field["dmd2-unet-1step-bin"].path
    with pytest.raises(ModelInputError) as refused:
        inspect_path(one_step)
    assert "dmd2_sdxl_4step_unet_fp16.safetensors" in str(refused.value)
    assert "never unpickles" in str(refused.value)
    four_step = tmp_path / "dmd2_sdxl_4step_unet_fp16.bin"
    shutil.copyfile(one_step, four_step)
    with pytest.raises(ModelInputError, match=r"use dmd2_sdxl_4step_unet_fp16\.safetensors instead"):
        inspect_path(four_step)
    other = tmp_path / "some_unet.bin"
    shutil.copyfile(one_step, other)
    with pytest.raises(ModelInputError, match=r"use some_unet\.safetensors instead"):
        inspect_path(other)
    (refusal,) = [i for i in scan_models(one_step.parent) if isinstance(i, Refused)]
    assert "dmd2_sdxl_4step_unet_fp16.safetensors" in refusal.reason


@pytest.mark.parametrize("role", ["dmd2-unet", "dmd2"])  # the role, or the name of the mode that takes it
def test_the_cli_refuses_the_pickle_in_one_line(
    field: FieldSet,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    role: str,
) -> None:
    out = tmp_path / "out"
    pickle = field["dmd2-unet-1step-bin"].path
    argv = ["compare", "--prompt", "x", "--base", str(tiny_models.base), "--out", str(out)]
    assert main([*argv, "--model", f"{role}={pickle}"]) == EXIT_BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(pickle) in lines[0] and "dmd2_sdxl_4step_unet_fp16.safetensors" in lines[0]
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# fewstep models


def test_fewstep_models_lists_the_field_in_80_columns(
    field: FieldSet,
    tiny_models: TinyModelSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = tmp_path / "hub"
    add_to_hub_cache(hub, "h1t/TCD-SDXL-LoRA", {LORA_FILE: field["tcd"].path})
    loose_copy(field["flash"].path, field.root / "downloads")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", str(field.root)]) == 0
    text = capsys.readouterr().out
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert main(["models", str(field.root), "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["h1t/TCD-SDXL-LoRA"]["enables"] == ["tcd"]
    assert listed["Hyper-SD/Hyper-SDXL-4steps-lora.safetensors"]["enables"] == ["hyper-lora"]
    assert listed["Hyper-SD/Hyper-SDXL-4steps-lora.safetensors"]["what"] == "4-step Hyper-SD LoRA"
    assert listed["PCM_Weights/sdxl/pcm_sdxl_normalcfg_8step_converted.safetensors"]["enables"] == [
        "pcm-normalcfg"
    ]
    assert listed["sdxl-turbo/"]["enables"] == ["turbo"]
    undecided = listed[f"downloads/{LORA_FILE}"]
    assert undecided["usable"] and "say which" in undecided["what"]
    assert undecided["enables"] == [] and undecided["say_which"] == ["lcm-lora", "tcd-lora", "flash-lora"]
    assert "say which: --model" in text and "flash-lora=PATH" in text  # wrapped in its column
    refused = listed["DMD2/dmd2_sdxl_1step_unet_fp16.bin"]
    assert not refused["usable"] and "dmd2_sdxl_4step_unet_fp16.safetensors" in refused["reason"]
