"""Held-out validation for the consistency distillations, so that a run ships its best weights.

Consistency distillation on the pocket model gets *worse* when it runs long: the first LCM-LoRA
scored 0.535 of prompts all right after 5 minutes and 0.45 after 21 (the foreground colour drifts:
orange turns red, blue green), while its loss kept falling. So the LCM recipes score their student
every few minutes on prompts the benchmark does not use, and keep the best weights beside the
newest ones (early stopping on a validation set). Validation generates through the plain diffusers
pipeline with the mode's own scheduler, steps and guidance (engine.contract.modes), on a base folder written
from the same checkpoints the student was distilled from.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devtools.pocket.evaluate import evaluate, load_pipeline, scheduler
from engine.contract.modes import MODES
from engine.pocket.grammar import evaluation_prompts

# tests.benchmarks.bench_pocket draws its prompts with seed 1 and images with seeds 8 * i.
VALIDATION_PROMPT_SEED = 2
VALIDATION_IMAGE_SEED = 1_000_000
# The LCM UNet is judged at the reference's guidance (CFG 5 for DDIM-30): its embedding w = 4 asks
# for the teacher's CFG-5 trajectory. LCM-LoRA runs with CFG off, as its card says (its default).
VALIDATION_GUIDANCE = {"lcm": 5.0}


class Validator:
    """Scores a student UNet on held-out prompts as ``mode`` runs it (its default steps and guidance)."""

    def __init__(
        self,
        base: dict[str, Any] | None,
        vae: dict[str, torch.Tensor] | None,
        *,
        mode: str,
        prompts: int,
        folder: Path | None = None,
    ):
        """From a ``train.base`` checkpoint and a VAE state, or (``folder``) from a shipped base folder."""
        from devtools.pocket.export import write_base_checkpoint

        spec = MODES[mode]
        self.steps = spec.default_steps
        self.guidance = VALIDATION_GUIDANCE.get(mode, spec.default_guidance)
        self.eta = spec.eta
        self.prompts = evaluation_prompts(prompts, seed=VALIDATION_PROMPT_SEED)
        if folder is not None:
            self.pipe = load_pipeline(folder)
        else:
            assert base is not None and vae is not None
            self._scratch = Path(tempfile.mkdtemp(prefix="fewstep-validate-"))
            try:
                write_base_checkpoint(self._scratch / "base", base, vae)
                self.pipe = load_pipeline(self._scratch / "base")
            finally:
                shutil.rmtree(self._scratch, ignore_errors=True)  # everything is in memory now
        self.pipe.scheduler = scheduler(self.pipe, spec.scheduler, **dict(spec.scheduler_overrides))

    def __call__(self, unet: nn.Module) -> float:
        """The fraction of prompts with every named attribute right (the benchmark's "all")."""
        was_training = unet.training
        self.pipe.unet = unet.eval()
        try:
            summary, _, _ = evaluate(
                self.pipe,
                self.prompts,
                steps=self.steps,
                guidance=self.guidance,
                seed=VALIDATION_IMAGE_SEED,
                eta=self.eta,
            )
        finally:
            unet.train(was_training)
        return summary.all
