"""The fused slot: one UNet in which the running LoRA mode's LoRA is fused, shared by every LoRA mode.

The model cards of SDXL-Lightning, LCM-LoRA, Hyper-SD, DMD2 and TCD load the LoRA and call
`fuse_lora()`, so their users' steps cost what a plain UNet's step costs. An unfused LoRA adds two
small matmuls and the peft wrapper's Python to every layer it touches (1.28 to 1.47 times the step at
SDXL's sizes on the CPU). The slot gives the LoRA modes that speed without touching the base UNet:

- It is a twin of the base UNet (engine.runtime.loading.share_weights): a second module tree over the
  same tensors. Only the layers the fused LoRA touches get tensors of their own, holding
  `base + delta`; every other tensor stays the base's, so the slot costs what those layers weigh.
- The delta is peft's own `get_delta_weight(adapter)` of the mode's LoRA (held, unfused, by the
  mode's twin), added as peft's unsafe merge adds it (`weight.data += delta`, one elementwise add,
  whose result does not depend on whether it is written in place): the slot's weights equal bit for
  bit what `load_lora_weights` + `fuse_lora` leave in a plain pipeline.
- The base UNet's tensors are only ever read, so the reference mode stays bit-exact and switching
  back to it costs nothing. A switch between LoRA modes re-fuses the slot (in place where the layers
  are the same); running the same LoRA mode again costs nothing.
- Style LoRAs stay unfused, as peft wrappers over the slot's layers that share the base UNet's style
  matrices (engine.runtime.styles). Their weights change with every request (a slider, 0 for off)
  and the reference mode runs them unfused too: fusing them would cost a fuse at each change and
  make the slot depend on them. A plain pipeline gets the same computation by fusing the mode's LoRA,
  `unload_lora_weights()` (which keeps the fused weights), then loading the styles; without the
  unload, peft skips every unfused adapter on a fused layer (LoraLayer.forward's `merged` branch).

Only the slot is written: no tensor of the base UNet, of a twin or of a full distilled UNet.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class FuseCost:
    """What one fuse cost: the seconds, and the bytes of slot weights it wrote."""

    seconds: float
    bytes: int


class CannotFuseError(Exception):
    """A LoRA this slot cannot fuse as peft would (a DoRA or a LoRA with biases): it runs unfused."""


# CPU math libraries choose their kernels, and so the order of their sums, by the address alignment of
# the operands (tests/rounding.py): a plain pipeline fuses into its loaded tensors where they sit (a
# folder's at its file offsets, 48 bytes past a 64-byte boundary on the tiny set), while a fresh
# tensor sits on a 64-byte boundary, and the two round differently in the last bit (one grey level in
# a few pixels). The slot's tensors therefore take the base tensor's offset within a page.
_PAGE = 4096


def aligned_like(tensor: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of the same shape, dtype and device whose address has the same offset
    within a 4096-byte page as `tensor`'s (a view into a slightly larger buffer)."""
    size = tensor.element_size()
    spare = _PAGE // size
    buffer = torch.empty(tensor.numel() + spare, dtype=tensor.dtype, device=tensor.device)
    shift = ((tensor.data_ptr() - buffer.data_ptr()) % _PAGE) // size
    return buffer[shift : shift + tensor.numel()].view(tensor.shape)


def _aligned_alike(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.device == b.device and a.data_ptr() % _PAGE == b.data_ptr() % _PAGE


def _tuner_layers(unet: Any, adapter: str) -> dict[str, Any]:
    """The peft layers of a UNet holding this adapter, by module name."""
    return {
        name: module
        for name, module in unet.named_modules()
        if adapter in (getattr(module, "lora_A", None) or {}) and hasattr(module, "get_delta_weight")
    }


def _base_layer(module: Any) -> Any:
    get = getattr(module, "get_base_layer", None)
    return get() if get is not None else module


class FusedSlot:
    """The slot UNet and which adapter is fused in it now.

    unet: a twin of the base UNet (styles loaded into it like into every twin); base_unet: the base
    UNet, whose tensors the slot's unfused layers share and its fused layers are computed from."""

    def __init__(self, unet: Any, base_unet: Any) -> None:
        self.unet = unet
        self.base_unet = base_unet
        self.fused: str | None = None  # the LoRA role fused now, at self.scale
        self.scale = 1.0
        self._own: dict[str, int] = {}  # module name -> bytes of the slot's own weight there
        # As a plain pipeline after load_lora_weights (peft freezes every base weight it sees) and
        # fuse_lora + unload_lora_weights: torch's matmul can round by this flag.
        unet.requires_grad_(False)

    @property
    def bytes(self) -> int:
        """Bytes of the slot's own tensors now (the layers the fused LoRA touches)."""
        return sum(self._own.values())

    def fuse(self, adapter: str, source: Any, lora_scale: float = 1.0) -> FuseCost:
        """Fuse `adapter` (any LoRA role), held unfused by the UNet `source` (its twin), into the slot
        at `lora_scale`, as diffusers' `fuse_lora(lora_scale=...)` fuses it. Costs nothing when it is
        fused already at that scale. Raises CannotFuseError, leaving the slot empty, for a LoRA peft
        would fuse differently."""
        if self.fused == adapter and self.scale == lora_scale:
            return FuseCost(0.0, 0)
        start = time.perf_counter()
        name = str(adapter)
        layers = _tuner_layers(source, name)
        for layer in layers.values():
            if name in getattr(layer, "lora_variant", {}) or getattr(layer, "lora_bias", {}).get(name):
                self.clear()
                raise CannotFuseError(f"{adapter}: a DoRA or a LoRA with biases is not fused here")
        slot_modules = dict(self.unet.named_modules())
        base_modules = dict(self.base_unet.named_modules())
        for stale in set(self._own) - set(layers):
            self._share(stale, slot_modules, base_modules)
        written = 0
        self.fused = None  # until every layer holds the new LoRA: a failure halfway leaves no claim
        with torch.no_grad():
            for module_name, layer in layers.items():
                base_weight = _base_layer(base_modules[module_name]).weight
                target = _base_layer(slot_modules[module_name])
                # peft's own delta (its fp32 upcast on the CPU for half precision included), added
                # as its unsafe merge adds it: `base_layer.weight.data += delta.to(orig_dtype)`.
                delta = _scaled_delta(layer, name, lora_scale).to(
                    device=base_weight.device, dtype=base_weight.dtype
                )
                slot_weight = target.weight.data
                if module_name not in self._own or not _aligned_alike(slot_weight, base_weight):
                    slot_weight = aligned_like(base_weight)
                    target.weight = torch.nn.Parameter(slot_weight, requires_grad=False)
                torch.add(base_weight, delta, out=slot_weight)
                size = target.weight.numel() * target.weight.element_size()
                self._own[module_name] = size
                written += size
        self.fused = adapter
        self.scale = lora_scale
        return FuseCost(time.perf_counter() - start, written)

    def clear(self) -> None:
        """Every layer back to the base's tensors; the slot holds nothing of its own."""
        slot_modules = dict(self.unet.named_modules())
        base_modules = dict(self.base_unet.named_modules())
        for module_name in list(self._own):
            self._share(module_name, slot_modules, base_modules)
        self.fused = None

    def _share(self, module_name: str, slot_modules: dict[str, Any], base_modules: dict[str, Any]) -> None:
        base_weight = _base_layer(base_modules[module_name]).weight
        _base_layer(slot_modules[module_name]).weight = torch.nn.Parameter(
            base_weight.detach(), requires_grad=False
        )
        del self._own[module_name]


def _scaled_delta(layer: Any, adapter: str, lora_scale: float) -> torch.Tensor:
    """peft's delta of `adapter` at the scale diffusers' fuse_lora(lora_scale=s) merges it with: the
    adapter's initial scaling (lora_alpha / r, as load_lora_weights leaves it), multiplied by s as
    peft's scale_layer multiplies it. The twin's own scaling (which set_adapters may have changed for
    the unfused route) is put back afterwards."""
    kept = layer.scaling[adapter]
    alpha, rank = layer.lora_alpha[adapter], layer.r[adapter]
    initial = alpha / math.sqrt(rank) if layer.use_rslora.get(adapter, False) else alpha / rank
    layer.scaling[adapter] = initial
    if lora_scale != 1:
        layer.scaling[adapter] *= lora_scale
    try:
        delta: torch.Tensor = layer.get_delta_weight(adapter)
    finally:
        layer.scaling[adapter] = kept
    return delta


def slot_bytes(base_unet: Any, source: Any, adapter: str) -> int:
    """Bytes the slot needs for this adapter: the base weights of the layers it touches."""
    base_modules = dict(base_unet.named_modules())
    total = 0
    for module_name in _tuner_layers(source, adapter):
        weight = _base_layer(base_modules[module_name]).weight
        total += weight.numel() * weight.element_size()
    return total
