"""LoRA adapters for training the pocket distillations, saved as kohya files the engine loads.

Plain modules and forward hooks rather than peft: the state maps one to one onto kohya's layout
(``lora_unet_<module>.lora_down.weight`` [r, in(, kh, kw)], ``.lora_up.weight`` [out, r(, 1, 1)],
``.alpha``), which avoids the mixed key names a peft export wrote in the trial (pocket.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from devtools.tiny_model import LORA_TARGETS, kohya_key, lora_target_modules


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor")
    return weight


class LoRA(nn.Module):
    """Rank-``rank`` adapters on every target module of a UNet; ``up`` starts at zero."""

    def __init__(self, unet: nn.Module, *, rank: int, alpha: float, targets: Sequence[str] = LORA_TARGETS):
        super().__init__()
        self.rank, self.alpha = rank, alpha
        self.names: list[str] = []
        self.down = nn.ModuleDict()
        self.up = nn.ModuleDict()
        self._hooks: list[Any] = []
        self.enabled = True
        for name, module in lora_target_modules(unet, targets):
            key = name.replace(".", "_")
            if isinstance(module, nn.Conv2d):
                down: nn.Module = nn.Conv2d(
                    module.in_channels,
                    rank,
                    module.kernel_size,  # type: ignore[arg-type]
                    module.stride,  # type: ignore[arg-type]
                    module.padding,  # type: ignore[arg-type]
                    bias=False,
                )
                up: nn.Module = nn.Conv2d(rank, module.out_channels, 1, bias=False)
            else:
                down = nn.Linear(module.in_features, rank, bias=False)
                up = nn.Linear(rank, module.out_features, bias=False)
            nn.init.zeros_(_weight(up))
            self.down[key], self.up[key] = down, up
            self.names.append(name)
            self._hooks.append(module.register_forward_hook(self._hook(key)))

    def _hook(self, key: str) -> Any:
        scale = self.alpha / self.rank

        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            if not self.enabled:
                return output
            delta: torch.Tensor = self.up[key](self.down[key](inputs[0]))
            return output + scale * delta

        return hook

    def remove(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        """``lora_unet_*`` keys with diffusers module names, as kohya and ByteDance write them."""
        state: dict[str, torch.Tensor] = {}
        for name in self.names:
            key = name.replace(".", "_")
            prefix = kohya_key(name)
            state[f"{prefix}.lora_down.weight"] = _weight(self.down[key]).detach().clone()
            state[f"{prefix}.lora_up.weight"] = _weight(self.up[key]).detach().clone()
            state[f"{prefix}.alpha"] = torch.tensor(float(self.alpha))
        return state


@torch.no_grad()
def extract_lora(
    base: nn.Module, tuned: nn.Module, *, rank: int, alpha: float, targets: Sequence[str] = LORA_TARGETS
) -> dict[str, torch.Tensor]:
    """A kohya LoRA of rank ``rank`` approximating ``tuned - base`` on the target modules (truncated SVD)."""
    tuned_modules = dict(tuned.named_modules())
    state: dict[str, torch.Tensor] = {}
    scale = alpha / rank
    for name, module in lora_target_modules(base, targets):
        other = tuned_modules[name]
        delta = (other.weight.float() - module.weight.float()).reshape(module.weight.shape[0], -1)
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        r = min(rank, s.numel())
        root = s[:r].sqrt()
        up = torch.zeros(delta.shape[0], rank)
        down = torch.zeros(rank, delta.shape[1])
        up[:, :r] = u[:, :r] * root / scale
        down[:r] = root[:, None] * vh[:r]
        prefix = kohya_key(name)
        if isinstance(module, nn.Conv2d):
            state[f"{prefix}.lora_down.weight"] = down.reshape(rank, *module.weight.shape[1:])
            state[f"{prefix}.lora_up.weight"] = up[:, :, None, None]
        else:
            state[f"{prefix}.lora_down.weight"] = down
            state[f"{prefix}.lora_up.weight"] = up
        state[f"{prefix}.alpha"] = torch.tensor(float(alpha))
    return state


def lora_from_kohya(lora: LoRA, state: dict[str, torch.Tensor]) -> None:
    """Load a kohya state (e.g. an SVD extraction) into a training LoRA of the same rank."""
    for name in lora.names:
        key, prefix = name.replace(".", "_"), kohya_key(name)
        _weight(lora.down[key]).data.copy_(state[f"{prefix}.lora_down.weight"])
        _weight(lora.up[key]).data.copy_(state[f"{prefix}.lora_up.weight"])
