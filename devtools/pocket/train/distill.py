"""Recipes 3 to 7: distillations of the pocket base model, each saved for the layout of its real counterpart.

    python -m devtools.pocket.train.distill lcm            --seed 0 --out .pocket-work/lcm       --minutes 18
    python -m devtools.pocket.train.distill lcm-lora       --seed 0 --out .pocket-work/lcm-lora  --minutes 18
    python -m devtools.pocket.train.distill lightning-unet --steps 4 --out .pocket-work/lightning --minutes 6
    python -m devtools.pocket.train.distill lightning-unet --steps 2 --out .pocket-work/lightning --minutes 6
    python -m devtools.pocket.train.distill lightning-lora --steps 4 --out .pocket-work/lightning --minutes 5
    python -m devtools.pocket.train.distill lightning-lora --steps 2 --out .pocket-work/lightning --minutes 5

    python -m devtools.pocket.train.distill tcd-lora --base resources/pocket/base --out .pocket-work/tcd-lora --minutes 15
    python -m devtools.pocket.train.distill pcm-lora --steps 4 --base resources/pocket/base --out .pocket-work/pcm-lora --minutes 15

(``--base .pocket-work/base/base.pt`` by default; the base's EMA weights are the teacher. A shipped
base folder, ``resources/pocket/base``, is the teacher as the application loads it.)

- ``lcm``: latent consistency distillation as diffusers' train_lcm_distill_sdxl script does it: a
  50-step DDIM solver on the teacher with CFG scale w + 1, w uniform in [2, 8] and given to the
  student as the guidance embedding (``time_cond_proj_dim``, zero-initialised, learning at 10x the
  rate), skip 20 timesteps, LCMScheduler's boundary scalings (timestep_scaling 10), EMA target with
  decay 0.95, lr 1e-4. The full UNet (its EMA) is saved.
- ``lcm-lora``: the same with a rank-8 LoRA on the base and no embedding (w uniform in [2, 5]), the
  online student as target, lr 1e-4.
- Both LCM recipes score themselves every ``--validate-minutes`` on held-out prompts and ship the
  weights that scored best (train.validate: on this model consistency distillation drifts when it
  runs long).
- ``lightning-unet``: progressive distillation on the trailing grid of EulerDiscreteScheduler (Euler on
  an epsilon model is DDIM): a student of N steps matches two teacher steps per step. N = 4 learns from
  the base with CFG 5 at 8 steps (guidance baked in, as Lightning is run with CFG off); N = 2 learns
  from the 4-step student.
- ``lightning-lora``: the same objective with a LoRA on the base (lr 5e-4), initialised by SVD from
  the full student of the same step count, so the file is a drop-in LoRA for the base (pocket.md's
  trap).
- ``tcd-lora``: trajectory consistency distillation, lcm-lora's machinery with TCD's x_t -> x_s
  consistency function (tcd_recipe).
- ``pcm-lora``: phased consistency distillation, ``--steps`` phases on DDIM's trailing grid (pcm_recipe).
- The LCM, TCD and PCM recipes score themselves every ``--validate-minutes`` on held-out prompts as
  their mode runs and keep the best weights.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from devtools.pocket.lora import LoRA, extract_lora, lora_from_kohya
from devtools.pocket.spec import POCKET_SPEC, build_unet
from devtools.pocket.text import encode, load_tokenizers, time_ids, tokenize
from devtools.pocket.train.base import TextUNet, alphas_cumprod, make_latent_cache
from devtools.pocket.train.common import (
    EMA,
    Clock,
    Log,
    load_checkpoint,
    one_thread,
    restore_run_state,
    run_state,
    save_checkpoint,
)
from engine.pocket.grammar import all_prompts

LCM_SOLVER_STEPS = 50
LCM_SKIP = 1000 // LCM_SOLVER_STEPS
TIMESTEP_SCALING = 10.0
SIGMA_DATA = 0.5
HUBER_C = 0.001
LIGHTNING_TEACHER_CFG = 5.0
# Drawings encoded for a distillation of the shipped base folder (train.base cached 12,000; 8,000
# take half the encoding time and are still 20x more than a 15-minute run draws at batch 32).
SHIPPED_CACHE_IMAGES = 8_000
LORA_RANK = POCKET_SPEC.lora_rank
LORA_ALPHA = POCKET_SPEC.lora_alpha
# The guidance embedding enters through one zero-initialised 32x32 projection whose signal (the
# teacher's CFG 3 against CFG 9) is faint next to the noise of the consistency loss: at the UNet's
# learning rate it stayed near zero (norm 0.07 after 1,400 steps) and guidance 4 and 8 drew the same
# pictures. It learns at ten times the rate.
COND_LR_FACTOR = 10.0


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' get_guidance_scale_embedding: sinusoid of w * 1000, [sin, cos]."""
    from diffusers import StableDiffusionXLPipeline

    emb: torch.Tensor = StableDiffusionXLPipeline.get_guidance_scale_embedding(None, w, embedding_dim=dim)
    return emb


def boundary(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LCMScheduler.get_scalings_for_boundary_condition_discrete."""
    scaled = t.float() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
    return c_skip[:, None, None, None], c_out[:, None, None, None]


def trailing(steps: int) -> list[int]:
    """EulerDiscreteScheduler's trailing timesteps: 4 -> [999, 749, 499, 249]."""
    return [int(t) for t in (np.round(np.arange(1000, 0, -1000 / steps)).astype(np.int64) - 1)]


class Setup:
    """The frozen teacher, all prompt embeddings and the latent cache.

    From a ``train.base`` checkpoint (its EMA weights), or from a shipped base folder
    (``resources/pocket/base``: the fp16 files upcast by from_pretrained, exactly the weights a shipped
    LoRA is applied to), whose latent cache is drawn and encoded by its own VAE on first use.
    """

    def __init__(self, base_checkpoint: Path, seed: int, *, work: Path | None = None):
        if base_checkpoint.is_dir():
            self._from_folder(base_checkpoint, seed, work or Path(".pocket-work") / "shipped")
            return
        state = torch.load(base_checkpoint, map_location="cpu", weights_only=False)
        self.base_state: dict[str, Any] | None = state
        self.base_folder: Path | None = None
        model = TextUNet(seed)
        model.load_state_dict(state["ema"])
        self.base_step = state["step"]
        self.teacher = model.unet.eval().requires_grad_(False)
        work = base_checkpoint.parent
        tokenizers = load_tokenizers(work / "tokenizers")
        self._prompts()
        with torch.no_grad():
            self.hidden, self.pooled = encode(
                model.te1, model.te2, tokenize(tokenizers[0], self.texts), tokenize(tokenizers[1], self.texts)
            )
        cache = torch.load(work / "latents.pt", weights_only=False)
        self.latents: torch.Tensor = cache["latents"]
        self.attributes: list[tuple[str, str, str, str, str]] = cache["attributes"]
        self.ac = alphas_cumprod()

    def _prompts(self) -> None:
        prompts = all_prompts()
        self.texts = [p.text for p in prompts]
        self.index = {(p.size, p.color, p.shape, p.background, p.position): i for i, p in enumerate(prompts)}

    def _from_folder(self, folder: Path, seed: int, work: Path) -> None:
        from devtools.pocket.evaluate import load_pipeline
        from engine.pocket.model import pocket_marker

        marker = pocket_marker(folder.parent)
        self.base_state = None
        self.base_folder = folder
        self.base_step = int(marker["base"]["steps"]) if marker is not None else -1
        pipe = load_pipeline(folder)
        self.teacher = pipe.unet.eval().requires_grad_(False)
        self._prompts()
        with torch.no_grad():
            self.hidden, self.pooled = encode(
                pipe.text_encoder,
                pipe.text_encoder_2,
                tokenize(pipe.tokenizer, self.texts),
                tokenize(pipe.tokenizer_2, self.texts),
            )
        cache = make_latent_cache(
            work / "latents.pt", pipe.vae, SHIPPED_CACHE_IMAGES, seed, Log(work, "latents.jsonl")
        )
        self.latents = cache["latents"]
        self.attributes = cache["attributes"]
        self.ac = alphas_cumprod()

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = rng.integers(0, len(self.latents), size=size)
        prompt_rows = []
        for row in rows:
            s, c, h, b, p = self.attributes[row]
            prompt_rows.append(self.index[(s, c, h, b, p if rng.random() < 0.75 else None)])
        index = torch.tensor(prompt_rows)
        return self.latents[torch.from_numpy(rows)], self.hidden[index], self.pooled[index]


def unet_eps(
    unet: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    hidden: torch.Tensor,
    pooled: torch.Tensor,
    cond: torch.Tensor | None = None,
) -> torch.Tensor:
    out: torch.Tensor = unet(
        x,
        t,
        hidden,
        timestep_cond=cond,
        added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids(len(x))},
    ).sample
    return out


def cfg_eps(
    unet: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    hidden: torch.Tensor,
    pooled: torch.Tensor,
    scale: torch.Tensor | float,
) -> torch.Tensor:
    """Classifier-free guidance against the zero embeddings of an empty negative prompt."""
    both = unet_eps(
        unet,
        torch.cat([x, x]),
        torch.cat([t, t]),
        torch.cat([hidden, torch.zeros_like(hidden)]),
        torch.cat([pooled, torch.zeros_like(pooled)]),
    )
    cond, uncond = both.chunk(2)
    s = scale[:, None, None, None] if isinstance(scale, torch.Tensor) else scale
    return uncond + s * (cond - uncond)


def consistency_loss(pred: torch.Tensor, goal: torch.Tensor, kind: str) -> torch.Tensor:
    """``l2``, or ``huber``: the pseudo-Huber loss of diffusers' LCM scripts (c = 0.001)."""
    if kind == "huber":
        return (((pred - goal) ** 2 + HUBER_C**2).sqrt() - HUBER_C).mean()
    return torch.nn.functional.mse_loss(pred, goal)


def alpha(ac: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """alpha_cumprod at t, 1.0 where t < 0 (the clean end of the last step)."""
    return torch.where(t >= 0, ac[t.clamp(min=0)], torch.ones_like(t, dtype=torch.float32))[
        :, None, None, None
    ]


def ddim(x: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor, a_next: torch.Tensor) -> torch.Tensor:
    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    return a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps


# --- the recipes: each returns (trainable module, loss function, hooks) ----------------------------


@dataclass
class Hooks:
    after_step: Callable[[], None]
    saved: Callable[[], dict[str, Any]]
    restore: Callable[[dict[str, Any]], None]
    # What validation scores and, when it scores best, what ships: (module as run, its weights).
    candidate: Callable[[], tuple[nn.Module, dict[str, torch.Tensor]]] | None = None


def lcm_recipe(setup: Setup, args: argparse.Namespace, lora: bool) -> tuple[nn.Module, Any, Hooks]:
    dim = POCKET_SPEC.lcm_time_cond_proj_dim
    if lora:
        student = copy.deepcopy(setup.teacher).requires_grad_(False)
        adapter = LoRA(student, rank=LORA_RANK, alpha=LORA_ALPHA)
        trainable: nn.Module = adapter
        target = student
        ema = None
    else:
        student = build_unet(time_cond_proj_dim=dim)
        missing = student.load_state_dict(setup.teacher.state_dict(), strict=False)
        assert set(missing.missing_keys) == {"time_embedding.cond_proj.weight"}, missing
        nn.init.zeros_(student.time_embedding.cond_proj.weight)
        trainable = student
        target = copy.deepcopy(student).requires_grad_(False)
        ema = EMA(student, 0.95)
    solver = torch.arange(1, LCM_SOLVER_STEPS + 1) * LCM_SKIP - 1  # 19, 39, ..., 999
    w_range = (2.0, 5.0) if lora else (2.0, 8.0)
    ac = setup.ac

    def loss_fn(rng: np.random.Generator) -> torch.Tensor:
        x0, hidden, pooled = setup.batch(rng, args.batch)
        b = len(x0)
        n = torch.randint(0, LCM_SOLVER_STEPS, (b,))
        t = solver[n]
        t_prev = (t - LCM_SKIP).clamp(min=0)
        w = torch.rand(b) * (w_range[1] - w_range[0]) + w_range[0]
        cond = None if lora else guidance_embedding(w, dim)
        noise = torch.randn_like(x0)
        a_t, a_prev = alpha(ac, t), alpha(ac, t_prev)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * noise
        eps = unet_eps(student, x_t, t, hidden, pooled, cond)
        c_skip, c_out = boundary(t)
        pred = c_skip * x_t + c_out * (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        with torch.no_grad():
            teacher_eps = cfg_eps(setup.teacher, x_t, t, hidden, pooled, w + 1)
            x_prev = ddim(x_t, teacher_eps, a_t, a_prev)
            if lora:
                adapter.enabled = True
            target_eps = unet_eps(target, x_prev, t_prev, hidden, pooled, cond)
            c_skip_p, c_out_p = boundary(t_prev)
            goal = c_skip_p * x_prev + c_out_p * (x_prev - (1 - a_prev).sqrt() * target_eps) / a_prev.sqrt()
        return consistency_loss(pred, goal, args.loss)

    def after_step() -> None:
        if ema is not None:
            ema.update(student)
            target.load_state_dict(ema.state_dict())

    def saved() -> dict[str, Any]:
        if lora:
            return {"kohya": adapter.kohya_state_dict()}
        assert ema is not None
        return {"unet": student.state_dict(), "ema": ema.state_dict()}

    def restore(state: dict[str, Any]) -> None:
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
            target.load_state_dict(state["ema"])

    def candidate() -> tuple[nn.Module, dict[str, torch.Tensor]]:
        if lora:
            return student, adapter.kohya_state_dict()
        assert ema is not None
        return target, {k: v.clone() for k, v in ema.state_dict().items()}

    return trainable, loss_fn, Hooks(after_step, saved, restore, candidate)


def lightning_recipe(setup: Setup, args: argparse.Namespace, lora: bool) -> tuple[nn.Module, Any, Hooks]:
    steps: int = args.steps
    out: Path = args.out
    if steps == 4:
        teacher, teacher_cfg = setup.teacher, LIGHTNING_TEACHER_CFG
    else:
        teacher = build_unet().eval().requires_grad_(False)
        teacher.load_state_dict(_require(out / f"student_{steps * 2}.pt")["unet"])
        teacher_cfg = 1.0
    if lora:
        student = copy.deepcopy(setup.teacher).requires_grad_(False)
        adapter = LoRA(student, rank=LORA_RANK, alpha=LORA_ALPHA)
        full = build_unet()
        full.load_state_dict(_require(out / f"student_{steps}.pt")["unet"])
        lora_from_kohya(adapter, extract_lora(setup.teacher, full, rank=LORA_RANK, alpha=LORA_ALPHA))
        trainable: nn.Module = adapter
    else:
        student = build_unet()
        student.load_state_dict((teacher if steps != 4 else setup.teacher).state_dict())
        trainable = student
    grid = [*trailing(steps), -1]
    fine = [*trailing(steps * 2), -1]
    ac = setup.ac

    def teacher_eps(
        x: torch.Tensor, t: torch.Tensor, hidden: torch.Tensor, pooled: torch.Tensor
    ) -> torch.Tensor:
        if teacher_cfg == 1.0:
            return unet_eps(teacher, x, t, hidden, pooled)
        return cfg_eps(teacher, x, t, hidden, pooled, teacher_cfg)

    def loss_fn(rng: np.random.Generator) -> torch.Tensor:
        x0, hidden, pooled = setup.batch(rng, args.batch)
        b = len(x0)
        i = torch.from_numpy(rng.integers(0, steps, size=b))
        t = torch.tensor(grid)[i]
        t_mid = torch.tensor(fine)[2 * i + 1]
        t_next = torch.tensor(grid)[i + 1]
        a_t, a_mid, a_next = alpha(ac, t), alpha(ac, t_mid), alpha(ac, t_next)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * torch.randn_like(x0)
        with torch.no_grad():
            x_mid = ddim(x_t, teacher_eps(x_t, t, hidden, pooled), a_t, a_mid)
            goal = ddim(x_mid, teacher_eps(x_mid, t_mid, hidden, pooled), a_mid, a_next)
        pred = ddim(x_t, unet_eps(student, x_t, t, hidden, pooled), a_t, a_next)
        return torch.nn.functional.mse_loss(pred, goal)

    def saved() -> dict[str, Any]:
        if lora:
            return {"kohya": adapter.kohya_state_dict()}
        return {"unet": student.state_dict()}

    return trainable, loss_fn, Hooks(lambda: None, saved, lambda _state: None)


def tcd_consistency(
    ac: torch.Tensor, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """TCD's trajectory consistency function from (x_t, t) to s <= t: the semi-linear (DDIM-form,
    first-order exponential integrator) step sqrt(a_s) x0_hat + sqrt(1 - a_s) eps. It is the identity
    from t to s = t, so the boundary condition holds with no c_skip/c_out scalings; TCDScheduler.step
    at eta 0 computes the same."""
    return ddim(x, eps, alpha(ac, t), alpha(ac, s))


def tcd_recipe(setup: Setup, args: argparse.Namespace, lora: bool) -> tuple[nn.Module, Any, Hooks]:
    """Trajectory consistency distillation (Zheng et al. 2024) as a LoRA on the base.

    lcm-lora's setup (50-step DDIM solver on the teacher at CFG w + 1, w uniform in [2, 5], skip 20,
    the online student as target, no guidance embedding), but the consistency function maps x_t to x_s
    for an s drawn uniformly from [0, t_prev] rather than to x_0: the semi-linear (exponential-
    integrator, DDIM-form) step x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) eps_hat from the network's own
    eps_hat (tcd_consistency), applied alike to the student at t and to the target at t_prev. Drawing s at random teaches the LoRA every sub-trajectory that TCDScheduler's strategic
    stochastic sampling visits (it steps to s = (1 - eta) * t_next, then adds noise back).
    """
    del lora  # always a LoRA, as the only released TCD SDXL weights are
    student = copy.deepcopy(setup.teacher).requires_grad_(False)
    adapter = LoRA(student, rank=LORA_RANK, alpha=LORA_ALPHA)
    solver = torch.arange(1, LCM_SOLVER_STEPS + 1) * LCM_SKIP - 1
    w_range = (2.0, 5.0)
    ac = setup.ac

    def consistency(x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return tcd_consistency(ac, x, t, eps, s)

    def loss_fn(rng: np.random.Generator) -> torch.Tensor:
        x0, hidden, pooled = setup.batch(rng, args.batch)
        b = len(x0)
        t = solver[torch.randint(0, LCM_SOLVER_STEPS, (b,))]
        t_prev = (t - LCM_SKIP).clamp(min=0)
        s = (torch.rand(b) * (t_prev + 1).float()).floor().long()  # uniform over 0..t_prev
        w = torch.rand(b) * (w_range[1] - w_range[0]) + w_range[0]
        a_t, a_prev = alpha(ac, t), alpha(ac, t_prev)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * torch.randn_like(x0)
        pred = consistency(x_t, t, unet_eps(student, x_t, t, hidden, pooled), s)
        with torch.no_grad():
            x_prev = ddim(x_t, cfg_eps(setup.teacher, x_t, t, hidden, pooled, w + 1), a_t, a_prev)
            goal = consistency(x_prev, t_prev, unet_eps(student, x_prev, t_prev, hidden, pooled), s)
        return consistency_loss(pred, goal, args.loss)

    return adapter, loss_fn, _lora_hooks(student, adapter)


# PCM's smallcfg LoRAs are run with CFG 1 to 2 or off: their teacher's guidance is small. The exact
# range PCM trained them with is not published with the files; 2 to 3 (LCM-LoRA's is 3 to 6) is this
# recipe's choice.
PCM_TEACHER_CFG = (2.0, 3.0)


def pcm_phase_edges(phases: int) -> list[int]:
    """The phase edges on DDIMScheduler's trailing grid: 4 -> [999, 749, 499, 249, 0].

    The last phase ends at t = 0 (alpha_cumprod[0], DDIM's final alpha with set_alpha_to_one False)."""
    return [*trailing(phases), 0]


def pcm_recipe(setup: Setup, args: argparse.Namespace, lora: bool) -> tuple[nn.Module, Any, Hooks]:
    """Phased consistency distillation (Wang et al. 2024) as a LoRA on the base, ``--steps`` phases.

    The trajectory is cut into N phases at DDIM's trailing timesteps for N steps; within each phase the
    student is consistent to the phase's lower edge: f(x_t, t) = the DDIM step from t straight to the
    edge with the student's eps, matched to f(x_prev, t_prev) of the online student, where x_prev is one
    teacher step (50-step DDIM solver, skip 20, CFG w + 1, w in PCM_TEACHER_CFG - 1) from x_t, clipped at
    the edge (there f is the identity, the boundary condition). So a 4-step DDIM-trailing sampler lands
    on exactly the edges the LoRA was trained to jump to. No adversarial term (PCM's is optional).
    """
    del lora
    student = copy.deepcopy(setup.teacher).requires_grad_(False)
    adapter = LoRA(student, rank=LORA_RANK, alpha=LORA_ALPHA)
    solver = torch.arange(1, LCM_SOLVER_STEPS + 1) * LCM_SKIP - 1
    edges = torch.tensor(pcm_phase_edges(args.steps))
    ac = setup.ac

    def loss_fn(rng: np.random.Generator) -> torch.Tensor:
        x0, hidden, pooled = setup.batch(rng, args.batch)
        b = len(x0)
        t = solver[torch.randint(0, LCM_SOLVER_STEPS, (b,))]
        # the lower edge of t's phase: the largest edge below t
        low = torch.stack([edges[edges < ti].max() for ti in t])
        t_prev = torch.maximum(t - LCM_SKIP, low)
        w = torch.rand(b) * (PCM_TEACHER_CFG[1] - PCM_TEACHER_CFG[0]) + PCM_TEACHER_CFG[0] - 1
        a_t, a_prev, a_low = alpha(ac, t), alpha(ac, t_prev), alpha(ac, low)
        x_t = a_t.sqrt() * x0 + (1 - a_t).sqrt() * torch.randn_like(x0)
        pred = ddim(x_t, unet_eps(student, x_t, t, hidden, pooled), a_t, a_low)
        with torch.no_grad():
            x_prev = ddim(x_t, cfg_eps(setup.teacher, x_t, t, hidden, pooled, w + 1), a_t, a_prev)
            goal = ddim(x_prev, unet_eps(student, x_prev, t_prev, hidden, pooled), a_prev, a_low)
        return consistency_loss(pred, goal, args.loss)

    return adapter, loss_fn, _lora_hooks(student, adapter)


def _lora_hooks(student: nn.Module, adapter: LoRA) -> Hooks:
    """An online-target LoRA: nothing after a step; ships (and validates) its kohya state."""
    return Hooks(
        lambda: None,
        lambda: {"kohya": adapter.kohya_state_dict()},
        lambda _state: None,
        lambda: (student, adapter.kohya_state_dict()),
    )


def _require(path: Path) -> dict[str, Any]:
    state = load_checkpoint(path)
    if state is None:
        raise FileNotFoundError(f"{path} is needed first: run the recipe that writes it")
    return state


RECIPES: dict[str, tuple[Callable[..., tuple[nn.Module, Any, Hooks]], bool]] = {
    "lcm": (lcm_recipe, False),
    "lcm-lora": (lcm_recipe, True),
    "lightning-unet": (lightning_recipe, False),
    "lightning-lora": (lightning_recipe, True),
    "tcd-lora": (tcd_recipe, True),
    "pcm-lora": (pcm_recipe, True),
}
# The application mode each self-validating recipe is scored as.
VALIDATION_MODE = {"lcm": "lcm", "lcm-lora": "lcm-lora", "tcd-lora": "tcd", "pcm-lora": "pcm-lora"}


def param_groups(trainable: nn.Module, lr: float) -> list[dict[str, Any]]:
    """The guidance projection (LCM UNet only) in a group of its own, at COND_LR_FACTOR x lr."""
    cond = [
        p
        for n, p in trainable.named_parameters()
        if p.requires_grad and n.startswith("time_embedding.cond_proj.")
    ]
    rest = [
        p
        for n, p in trainable.named_parameters()
        if p.requires_grad and not n.startswith("time_embedding.cond_proj.")
    ]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": lr}]
    if cond:
        groups.append({"params": cond, "lr": lr * COND_LR_FACTOR})
    return groups


def checkpoint_name(recipe: str, steps: int) -> str:
    return {
        "lcm": "lcm.pt",
        "lcm-lora": "lora.pt",
        "lightning-unet": f"student_{steps}.pt",
        "lightning-lora": f"lora_{steps}.pt",
        "tcd-lora": "tcd_lora.pt",
        "pcm-lora": f"pcm_lora_{steps}.pt",
    }[recipe]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--base",
        type=Path,
        default=Path(".pocket-work/base/base.pt"),
        help="train.base's checkpoint, or a shipped base folder (resources/pocket/base)",
    )
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=2.0)
    parser.add_argument(
        "--steps", type=int, default=4, choices=(4, 2), help="Lightning step count; PCM phase count"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument(
        "--validate-minutes",
        type=float,
        default=3.0,
        help="LCM recipes: score the student on held-out prompts this often and ship the best (0: never)",
    )
    parser.add_argument("--validate-prompts", type=int, default=128)
    parser.add_argument("--loss", choices=("l2", "huber"), default="l2", help="LCM recipes' consistency loss")
    args = parser.parse_args()
    one_thread()
    out: Path = args.out
    name = checkpoint_name(args.recipe, args.steps)
    log = Log(out, name.replace(".pt", ".jsonl"))
    torch.manual_seed(args.seed)
    setup = Setup(args.base, args.seed, work=out.parent / "shipped")
    build, lora = RECIPES[args.recipe]
    trainable, loss_fn, hooks = build(setup, args, lora)
    # LCM-LoRA at 1e-4 as diffusers' LCM-LoRA script; at 5e-4 it drifted faster (see train.validate).
    lr = args.lr or (5e-4 if args.recipe == "lightning-lora" else 1e-4)  # TCD and PCM LoRAs as LCM-LoRA
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(param_groups(trainable, lr), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    step, elapsed = 0, 0.0
    best: dict[str, Any] | None = None
    path = out / name
    if (state := load_checkpoint(path)) is not None:
        trainable.load_state_dict(state["trainable"])
        step, elapsed = restore_run_state(state, optimizer, rng)
        hooks.restore(state)
        best = state.get("best")
        log(event="resume", step=step, elapsed=elapsed)
    log(
        event="start",
        recipe=args.recipe,
        steps=args.steps,
        base_step=setup.base_step,
        lr=lr,
        loss=args.loss,
        trainable=sum(p.numel() for p in params),
    )
    clock = Clock(elapsed)
    last_save = last_validation = clock.elapsed
    running = 0.0
    validator = None
    if hooks.candidate is not None and args.validate_minutes > 0:
        from devtools.pocket.export import shipped_vae
        from devtools.pocket.train.validate import Validator

        mode = VALIDATION_MODE[args.recipe]
        if setup.base_folder is not None:
            validator = Validator(
                None, None, mode=mode, prompts=args.validate_prompts, folder=setup.base_folder
            )
        else:
            validator = Validator(
                setup.base_state,
                shipped_vae(args.base.parent.parent),
                mode=mode,
                prompts=args.validate_prompts,
            )

    validated = -1

    def validate() -> None:
        nonlocal best, validated
        validated = step
        assert validator is not None and hooks.candidate is not None
        with clock.paused():  # validation is not training time
            module, weights = hooks.candidate()
            value = validator(module)
        improved = best is None or value > best["score"]
        log(event="validation", step=step, minutes=round(clock.elapsed / 60, 2), all=value, best=improved)
        if improved:
            best = {"step": step, "elapsed": clock.elapsed, "score": value, "weights": weights}

    def save() -> None:
        save_checkpoint(
            path,
            {
                "trainable": trainable.state_dict(),
                **run_state(optimizer, rng, step, clock.elapsed),
                "minutes": clock.elapsed / 60,
                "steps": args.steps,
                "base_step": setup.base_step,
                "best": best,
                **hooks.saved(),
            },
        )

    while clock.elapsed < args.minutes * 60:
        loss = loss_fn(rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        hooks.after_step()
        step += 1
        running = 0.95 * running + 0.05 * loss.item() if step > 1 else loss.item()
        if step % 20 == 0:
            log(step=step, minutes=round(clock.elapsed / 60, 2), loss=round(running, 6))
        if validator is not None and clock.elapsed - last_validation > args.validate_minutes * 60:
            validate()
            last_validation = clock.elapsed
        if clock.elapsed - last_save > args.checkpoint_minutes * 60:
            save()
            last_save = clock.elapsed
    if validator is not None and validated != step:
        validate()
    save()
    log(event="done", step=step, minutes=clock.elapsed / 60, best=None if best is None else best["step"])


if __name__ == "__main__":
    main()
