"""The Models tab's scan of a models folder and the Hugging Face cache names the field's files by role."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.field_fixtures import FieldSet, build_field_set
from devtools.hub_cache_fixture import add_to_hub_cache
from devtools.tiny_model import TinyModelSet
from gui.state.model_scan import scan_folder, scan_hub_cache
from gui.state.model_setup import Use

LORA_FILE = "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def field(tiny_models: TinyModelSet, tmp_path_factory: pytest.TempPathFactory) -> FieldSet:
    return build_field_set(tiny_models, tmp_path_factory.mktemp("field") / "models")


def test_the_cache_repository_id_decides_and_an_unknown_one_asks(
    field: FieldSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    add_to_hub_cache(hub, "h1t/TCD-SDXL-LoRA", {LORA_FILE: field["tcd"].path})
    add_to_hub_cache(hub, "jasperai/flash-sdxl", {LORA_FILE: field["flash"].path})
    add_to_hub_cache(hub, "someone/loras", {LORA_FILE: field["tcd"].path})
    add_to_hub_cache(hub, "tianweiy/DMD2", {p.name: p for p in field.root.joinpath("DMD2").iterdir()})
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    entries, _skipped = scan_hub_cache()
    by_name = {entry.name: entry for entry in entries}
    assert by_name["h1t/TCD-SDXL-LoRA"].natural_use == Use("tcd-lora")
    assert by_name["jasperai/flash-sdxl"].natural_use == Use("flash-lora")
    undecided = by_name["someone/loras"]
    assert undecided.usable and undecided.natural_use is None
    assert "say which" in undecided.what() and "right-click" in undecided.why_no_natural_use()
    assert Use("tcd-lora") in undecided.uses() and Use.STYLE in undecided.uses()
    assert by_name["tianweiy/DMD2/dmd2_sdxl_4step_lora_fp16.safetensors"].natural_use == Use("dmd2-lora")
    assert by_name["tianweiy/DMD2/dmd2_sdxl_4step_unet_fp16.safetensors"].enables() == "DMD2 UNet"
    pickle = by_name["tianweiy/DMD2/dmd2_sdxl_1step_unet_fp16.bin"]
    assert pickle.refused is not None and "dmd2_sdxl_4step_unet_fp16.safetensors" in pickle.refused


def test_the_models_folder_lists_each_field_file_for_its_mode(field: FieldSet) -> None:
    entries, problem = scan_folder(field.root)
    assert problem is None
    by_name = {entry.name: entry for entry in entries}
    assert by_name["TCD-SDXL-LoRA"].natural_use == Use("tcd-lora")  # a LoRA folder is named by its folder
    assert by_name["Hyper-SD/Hyper-SDXL-8steps-CFG-lora.safetensors"].what() == "8-step Hyper-SD CFG LoRA"
    assert by_name["PCM_Weights/sdxl/pcm_sdxl_smallcfg_4step_converted.safetensors"].natural_use == Use(
        "pcm-lora"
    )
    assert by_name["sdxl-turbo"].natural_use == Use("turbo")
    assert by_name["sdxl-turbo"].uses()[:2] == (Use("turbo"), Use.BASE)
    lcmlike = by_name["PCM_Weights/sdxl/pcm_sdxl_lcmlike_lora_converted.safetensors"]
    assert lcmlike.natural_use == Use("pcm-lcmlike-lora")  # PCM's own LCM-like file, not the LCM-LoRA
