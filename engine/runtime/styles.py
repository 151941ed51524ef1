"""Style LoRAs: the artist's own LoRAs, stacked on every mode that denoises with the base UNet.

Each style is loaded once from disk. Its UNet part goes into the base UNet and into each LoRA twin
(the twins then point at the base's LoRA matrices, so a style is held once in memory); its text
encoder part, if any, goes into the shared text encoders. Turning a style on, off or to another
weight calls set_adapters only on what changed, and reads no file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.contract.errors import ModelInputError
from engine.files.model_files import ModelFile
from engine.runtime.libraries import quiet_diffusers
from engine.runtime.loading import (
    count_adapter_modules,
    load_lora,
    lora_module_names,
    quiet_adapter_loading,
    read_lora_state,
)

diffusers = quiet_diffusers()
from diffusers.loaders.lora_base import (  # noqa: E402
    disable_lora_for_text_encoder,
    enable_lora_for_text_encoder,
    set_adapters_for_text_encoder,
)

_UNET_KEY_PREFIXES = ("lora_unet_", "unet.")  # kohya (both namings) / PEFT and old diffusers


@dataclass(frozen=True)
class LoadedStyle:
    name: str  # the adapter name, "style-0", ...
    file: ModelFile
    default_weight: float
    patches_text_encoders: bool


def unfreeze_base_weights(unet: Any) -> None:
    """peft freezes every weight it wraps. A plain pipeline's weights require grad, and torch's
    matmul folds some non-contiguous products differently by that flag (equally valid, last bit
    different), so the base UNet keeps plain diffusers' flags and stays bit-identical to it."""
    for name, parameter in unet.named_parameters():
        if "lora_" not in name:
            parameter.requires_grad_(True)


def load_style(
    base_pipe: Any, twins: Iterable[Any], info: ModelFile, name: str, weight: float
) -> LoadedStyle:
    """Load one style LoRA into the base pipeline and each twin; the twins share its matrices."""
    load_lora(base_pipe, info, name, "--lora")
    unfreeze_base_weights(base_pipe.unet)
    state = read_lora_state(info.path)
    unet_state = {k: v for k, v in state.items() if k.startswith(_UNET_KEY_PREFIXES)}
    patches_text = len(unet_state) < len(state)
    for twin in twins:
        if not unet_state:
            break
        with quiet_adapter_loading():
            # Only UNet keys: the text encoders are shared, and already hold this style.
            twin.load_lora_weights(dict(unet_state), adapter_name=name)
        _share_lora_matrices(base_pipe.unet, twin.unet, name)
        expected = len(lora_module_names(list(unet_state)))
        if count_adapter_modules([twin.unet], name) != expected:
            raise ModelInputError(f"--lora {info.path}: it did not fit the base model's UNet")
    return LoadedStyle(name=name, file=info, default_weight=weight, patches_text_encoders=patches_text)


def _share_lora_matrices(source: Any, target: Any, name: str) -> None:
    source_modules = dict(source.named_modules())
    for module_name, module in target.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or name not in lora_a:
            continue
        twin_of = source_modules[module_name]
        module.lora_A[name] = twin_of.lora_A[name]
        module.lora_B[name] = twin_of.lora_B[name]
        # The base's alpha too: it may come from the file's adapter metadata (apply_adapter_metadata).
        module.lora_alpha[name] = twin_of.lora_alpha[name]
        module.scaling[name] = twin_of.scaling[name]


class AdapterState:
    """Which adapters are active, at which weights, in each UNet and in the text encoders.

    Only changes are applied: a comparison that does not change the styles touches nothing.
    """

    def __init__(self) -> None:
        self._unets: dict[int, tuple[tuple[str, float], ...]] = {}
        self._text: tuple[tuple[str, float], ...] | None = None

    def apply_unet(self, unet: Any, active: tuple[tuple[str, float], ...], *, keep_base_flags: bool) -> None:
        if self._unets.get(id(unet)) == active:
            return
        if active:
            unet.enable_lora()
            unet.set_adapters([n for n, _ in active], [w for _, w in active])
        else:
            unet.disable_lora()
        if keep_base_flags:
            unfreeze_base_weights(unet)
        self._unets[id(unet)] = active

    def touched(self, unet: Any) -> bool:
        """Whether this UNet's adapters were ever set here (so a mode at the loaded weights must set them back)."""
        return id(unet) in self._unets

    def apply_text(self, encoders: Iterable[Any], active: tuple[tuple[str, float], ...]) -> None:
        if self._text == active:
            return
        for encoder in encoders:
            present = {n for n, _ in active if _has_adapter(encoder, n)}
            wanted = [(n, w) for n, w in active if n in present]
            if wanted:
                enable_lora_for_text_encoder(encoder)
                set_adapters_for_text_encoder([n for n, _ in wanted], encoder, [w for _, w in wanted])
            elif _has_any_adapter(encoder):
                disable_lora_for_text_encoder(encoder)
        self._text = active


def _has_adapter(model: Any, name: str) -> bool:
    return bool(count_adapter_modules([model], name))


def _has_any_adapter(model: Any) -> bool:
    return any(getattr(m, "lora_A", None) for m in model.modules())


def active_styles(
    styles: Iterable[LoadedStyle], weights: Mapping[str, float] | None
) -> tuple[tuple[str, float], ...]:
    """(name, weight) of each style that is on; weight 0 means off, exactly as if never loaded."""
    chosen = []
    for style in styles:
        weight = style.default_weight if weights is None else weights.get(style.name, style.default_weight)
        if weight != 0.0:
            chosen.append((style.name, weight))
    return tuple(chosen)
