"""Weight folders hold safetensors, or nothing Fewstep opens.

diffusers and transformers fall back to pickled weights (.bin, .pt, .ckpt) where a folder has no
.safetensors file, and unpickling runs code. Every load asks for safetensors only; this check
refuses such a folder first, in the same one line as a .ckpt file, before anything loads.
"""

from __future__ import annotations

from pathlib import Path

from engine.contract.errors import ModelInputError
from engine.files.safe_paths import special_file_problem

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}
# Every weight format a diffusers or transformers folder may hold; only .safetensors are loaded.
_WEIGHT_SUFFIXES = {*PICKLE_SUFFIXES, ".safetensors", ".msgpack", ".h5", ".onnx"}


def check_folder_weights(folder: Path) -> None:
    """A diffusers or transformers weight folder must hold .safetensors weights, and only regular files.

    The libraries fall back to pickled weights (.bin, .pt, .ckpt) where no .safetensors file exists;
    unpickling runs code, so such a folder is refused here, before anything loads.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ModelInputError(f"cannot list {folder}: {exc.strerror or exc}") from None
    weights = [e for e in entries if e.suffix.lower() in _WEIGHT_SUFFIXES or e.name.endswith(".index.json")]
    for entry in entries:
        if not entry.name.startswith(".") and (problem := special_file_problem(entry)):
            raise ModelInputError(problem)
    if not any(e.suffix.lower() == ".safetensors" for e in weights):
        pickles = [e for e in weights if e.suffix.lower() in PICKLE_SUFFIXES]
        if pickles:
            raise ModelInputError(
                f"{pickles[0]} is a pickle checkpoint ({pickles[0].suffix}) and {folder} holds no"
                " .safetensors weights; Fewstep never unpickles files, as they can run code: use the"
                " .safetensors version"
            )
        raise ModelInputError(f"{folder} holds no .safetensors weights: is the download complete?")
