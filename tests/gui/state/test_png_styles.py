"""A dropped PNG's style LoRAs found among the artist's files: by stem, by stem in any case, by a hash
the cache already holds; a name found nowhere, or a file that is no LoRA, is said."""

from __future__ import annotations

import shutil
from pathlib import Path

from devtools.tiny_model import TinyModelSet
from engine.outputs.hash_cache import lora_hash
from engine.outputs.infotext import StyleTag
from gui.state.png_styles import match_styles


def test_styles_are_found_by_stem_case_and_cached_hash(tiny_models: TinyModelSet, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    (folder / "loras").mkdir(parents=True)
    configured = folder / "Ink_Style.safetensors"
    renamed = folder / "loras" / "renamed.safetensors"
    shutil.copy(tiny_models.lcm_lora, configured)
    shutil.copy(tiny_models.lightning_lora, renamed)
    (folder / "not_a_lora.safetensors").write_bytes(b"\0" * 16)
    other_hash = "0123456789ab"
    tags = [
        StyleTag("ink_style", 0.5),  # the configured file, in another case
        StyleTag("original_name", 0.7),  # no hash: a renamed file is not found by name
        StyleTag("not_a_lora", 1.0),
        StyleTag("elsewhere", 1.0, other_hash),
    ]
    match = match_styles(tags, [configured], folder)
    assert match.found == ((configured, 0.5),)
    assert match.missing[0] == "original_name" and match.missing[2] == "elsewhere"
    assert match.missing[1].startswith("not_a_lora (") and "not an SDXL LoRA" in match.missing[1]

    # A renamed file is found by A1111's short hash, once the cache knows the file (no hashing here).
    by_hash = StyleTag("original_name", 0.7, lora_hash(renamed))
    assert match_styles([by_hash], [configured], folder).found == ((renamed, 0.7),)
    renamed.touch()  # another version of the file: the cache no longer vouches for it
    assert match_styles([by_hash], [configured], folder).missing == ("original_name",)
