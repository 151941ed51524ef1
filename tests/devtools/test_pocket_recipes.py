"""The pieces of the pocket recipes against the diffusers code they must agree with."""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, LCMScheduler, TCDScheduler

from devtools.pocket.export import selected_weights, write_lora
from devtools.pocket.lora import LoRA, extract_lora
from devtools.pocket.spec import LATENT_SIZE, POCKET_SPEC, build_unet
from devtools.pocket.text import vocab_and_merges
from devtools.pocket.train.base import alphas_cumprod
from devtools.pocket.train.common import Clock, load_checkpoint, restore_run_state, run_state, save_checkpoint
from devtools.pocket.train.distill import (
    COND_LR_FACTOR,
    boundary,
    consistency_loss,
    ddim,
    param_groups,
    pcm_phase_edges,
    tcd_consistency,
    trailing,
)
from devtools.tiny_model import scheduler_config as sdxl_scheduler_file
from engine.files.model_files import inspect_path
from engine.runtime.loading import load_lora
from tests.conftest import REPO_ROOT


def scheduler_config() -> dict[str, object]:
    return {k: v for k, v in sdxl_scheduler_file().items() if not k.startswith("_")}


def test_schedule_equals_sdxl_scheduler() -> None:
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config())
    torch.testing.assert_close(alphas_cumprod(), scheduler.alphas_cumprod.float())


@pytest.mark.parametrize("steps", [2, 4, 8])
def test_trailing_grid_equals_euler_trailing(steps: int) -> None:
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config(), timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    assert trailing(steps) == [round(float(t)) for t in scheduler.timesteps]


def test_ddim_step_equals_an_euler_trailing_step() -> None:
    """The progressive distillation's step is exactly the Lightning mode's sampler step."""
    scheduler = EulerDiscreteScheduler.from_config(scheduler_config(), timestep_spacing="trailing")
    scheduler.set_timesteps(4)
    ac = alphas_cumprod()
    generator = torch.Generator().manual_seed(0)
    x_vp = torch.randn(2, 4, 8, 8, generator=generator)
    eps = torch.randn(2, 4, 8, 8, generator=generator)
    t, t_next = scheduler.timesteps[1], scheduler.timesteps[2]
    sigma = scheduler.sigmas[1]
    x_euler = x_vp * (sigma**2 + 1).sqrt()  # Euler's sample is the VP sample over sqrt(alpha)
    scheduler._step_index = 1
    out = scheduler.step(eps, t, x_euler).prev_sample
    a_t = ac[int(t)].reshape(1, 1, 1, 1)
    a_next = ac[int(t_next)].reshape(1, 1, 1, 1)
    expected = ddim(x_vp, eps, a_t, a_next) / a_next.sqrt()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step_index", [0, 1, 2, 3])
def test_tcd_consistency_function_is_the_tcd_scheduler_step(step_index: int) -> None:
    """The map the TCD recipe trains (x_t -> x_s, semi-linear) is what TCDScheduler.step computes at
    eta 0 from each of its 4 timesteps to the next (to 0 after the last): the LoRA learns the jumps the
    tcd mode's sampler takes."""
    scheduler = TCDScheduler.from_config(scheduler_config())
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(step_index)
    x = torch.randn(2, 4, 8, 8, generator=generator)
    eps = torch.randn(2, 4, 8, 8, generator=generator)
    t = int(scheduler.timesteps[step_index])
    s = int(scheduler.timesteps[step_index + 1]) if step_index < 3 else 0
    scheduler._step_index = step_index
    expected = scheduler.step(eps, t, x, eta=0.0).prev_sample
    got = tcd_consistency(alphas_cumprod(), x, torch.tensor([t, t]), eps, torch.tensor([s, s]))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t", [0, 19, 500])
def test_tcd_consistency_function_is_the_identity_to_its_own_timestep(t: int) -> None:
    """The boundary condition: from t to s = t it returns x whatever eps (at t = 0 above all, where
    the target of the last solver step is the teacher's x_0)."""
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    both = torch.tensor([t, t])
    torch.testing.assert_close(tcd_consistency(alphas_cumprod(), x, both, eps, both), x, rtol=1e-5, atol=1e-5)


def test_pcm_phases_end_where_ddim_trailing_steps_land() -> None:
    """The PCM recipe's jump from a phase's top edge to its lower edge is exactly one step of the
    pcm-lora mode's sampler (DDIM, trailing, set_alpha_to_one False): 999 -> 749 -> 499 -> 249 -> 0."""
    scheduler = DDIMScheduler.from_config(
        scheduler_config(), timestep_spacing="trailing", clip_sample=False, set_alpha_to_one=False
    )
    scheduler.set_timesteps(4)
    edges = pcm_phase_edges(4)
    assert edges[:-1] == [int(t) for t in scheduler.timesteps]
    ac = alphas_cumprod()
    generator = torch.Generator().manual_seed(0)
    for top, low in itertools.pairwise(edges):
        x = torch.randn(2, 4, 8, 8, generator=generator)
        eps = torch.randn(2, 4, 8, 8, generator=generator)
        out = scheduler.step(eps, top, x, eta=0.0).prev_sample
        a_top, a_low = ac[top].reshape(1, 1, 1, 1), ac[low].reshape(1, 1, 1, 1)
        torch.testing.assert_close(out, ddim(x, eps, a_top, a_low), rtol=1e-4, atol=1e-4)


def test_boundary_scalings_equal_lcm_scheduler() -> None:
    scheduler = LCMScheduler.from_config(scheduler_config())
    t = torch.tensor([0, 19, 259, 999])
    c_skip, c_out = boundary(t)
    for i, step in enumerate(t.tolist()):
        expected_skip, expected_out = scheduler.get_scalings_for_boundary_condition_discrete(step)
        assert float(c_skip[i]) == pytest.approx(float(expected_skip), rel=1e-5)
        assert float(c_out[i]) == pytest.approx(float(expected_out), rel=1e-5)


def test_vocabulary_is_a_valid_clip_bpe() -> None:
    vocab, merges = vocab_and_merges()
    ids = sorted(vocab.values())
    assert ids == list(range(len(vocab)))
    assert max(vocab, key=lambda k: vocab[k]) == "<|endoftext|>"
    for merge in merges:
        left, right = merge.split()
        assert left in vocab and right in vocab and left + right in vocab


def test_extract_lora_recovers_a_low_rank_change() -> None:
    torch.manual_seed(0)
    base = build_unet()
    tuned = copy.deepcopy(base)
    module = tuned.down_blocks[1].attentions[0].proj_in
    delta = torch.randn(module.weight.shape[0], 3) @ torch.randn(3, module.weight.shape[1]) * 0.01
    module.weight.data += delta
    state = extract_lora(base, tuned, rank=POCKET_SPEC.lora_rank, alpha=POCKET_SPEC.lora_alpha)
    prefix = "lora_unet_down_blocks_1_attentions_0_proj_in"
    scale = POCKET_SPEC.lora_alpha / POCKET_SPEC.lora_rank
    rebuilt = scale * state[f"{prefix}.lora_up.weight"] @ state[f"{prefix}.lora_down.weight"]
    torch.testing.assert_close(rebuilt, delta, rtol=1e-3, atol=1e-5)


POCKET_BASE = REPO_ROOT / "resources" / "pocket" / "base"


@pytest.mark.skipif(not POCKET_BASE.is_dir(), reason="resources/pocket not exported yet")
def test_training_lora_computes_what_the_engine_loads(tmp_path: Path) -> None:
    """The hooks used in training and the engine's kohya loading give the same UNet output."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(
        POCKET_BASE, dtype=torch.float32, variant="fp16", local_files_only=True
    )
    hooked_unet = copy.deepcopy(pipe.unet)
    torch.manual_seed(1)
    lora = LoRA(hooked_unet, rank=POCKET_SPEC.lora_rank, alpha=POCKET_SPEC.lora_alpha)
    for parameter in lora.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
        # Values fp16 holds exactly, so the saved file and the hooks hold the same numbers.
        parameter.data = parameter.data.half().float()
    sample = torch.randn(1, 4, LATENT_SIZE, LATENT_SIZE)
    hidden = torch.randn(1, 16, POCKET_SPEC.cross_attention_dim)
    added = {"text_embeds": torch.randn(1, POCKET_SPEC.te2_projection), "time_ids": torch.zeros(1, 6)}
    with torch.no_grad():
        hooked = hooked_unet(sample, 500, hidden, added_cond_kwargs=added).sample
        plain = pipe.unet(sample, 500, hidden, added_cond_kwargs=added).sample
    path = tmp_path / "sdxl_lightning_4step_lora.safetensors"
    write_lora(path, lora.kohya_state_dict(), metadata=None)
    landed = load_lora(pipe, inspect_path(path), "x", "--lightning-lora")
    assert landed == len(lora.names)
    with torch.no_grad():
        loaded = pipe.unet(sample, 500, hidden, added_cond_kwargs=added).sample
    assert (hooked - plain).abs().mean() > 1e-3
    torch.testing.assert_close(loaded, hooked, rtol=1e-3, atol=1e-4)


def test_lcm_guidance_projection_learns_in_its_own_group() -> None:
    student = build_unet(time_cond_proj_dim=POCKET_SPEC.lcm_time_cond_proj_dim)
    groups = param_groups(student, 1e-4)
    assert [g["lr"] for g in groups] == [1e-4, 1e-4 * COND_LR_FACTOR]
    assert groups[1]["params"] == [student.time_embedding.cond_proj.weight]
    assert sum(len(g["params"]) for g in groups) == len(list(student.parameters()))
    # A UNet without the embedding (the LoRA recipes' base) keeps one group.
    assert len(param_groups(build_unet(), 1e-4)) == 1


def _train(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator, steps: int
) -> None:
    for _ in range(steps):
        x = torch.from_numpy(rng.standard_normal((8, 4)).astype(np.float32)) + torch.randn(8, 4)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_a_resumed_run_continues_exactly(tmp_path: Path) -> None:
    """Stopping after a checkpoint and resuming gives the weights of an unbroken run."""

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer, np.random.Generator]:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-2), np.random.default_rng(0)

    model, optimizer, rng = fresh()
    _train(model, optimizer, rng, 6)
    unbroken = copy.deepcopy(model.state_dict())

    model, optimizer, rng = fresh()
    _train(model, optimizer, rng, 3)
    save_checkpoint(tmp_path / "run.pt", {"model": model.state_dict(), **run_state(optimizer, rng, 3, 1.5)})
    model, optimizer, rng = fresh()
    torch.manual_seed(123)  # the resumed process starts with other random state
    rng = np.random.default_rng(123)
    state = load_checkpoint(tmp_path / "run.pt")
    assert state is not None
    model.load_state_dict(state["model"])
    assert restore_run_state(state, optimizer, rng) == (3, 1.5)
    _train(model, optimizer, rng, 3)
    for key, value in unbroken.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_export_ships_the_weights_that_validated_best() -> None:
    newest = {"w": torch.ones(2)}
    best_weights = {"w": torch.zeros(2)}
    state = {"step": 900, "elapsed": 600.0, "ema": newest}
    weights, info = selected_weights(state, "ema")
    assert weights is newest and info == {"steps": 900, "minutes": 10.0}
    state["best"] = {"step": 300, "elapsed": 200.0, "score": 0.61234, "weights": best_weights}
    weights, info = selected_weights(state, "ema")
    assert weights is best_weights
    assert info["selected"] == {"step": 300, "minutes": 3.3, "validation_all": 0.6123}


def test_paused_clock_leaves_validation_out_of_training_time() -> None:
    clock = Clock(elapsed=60.0)
    with clock.paused():
        time.sleep(1.0)
    assert 60.0 <= clock.elapsed < 60.5  # a second paused; margin for a loaded machine
    time.sleep(0.05)
    assert clock.elapsed >= 60.05


def test_pseudo_huber_is_quadratic_near_zero_and_linear_far_away() -> None:
    goal = torch.zeros(2, 4)
    assert float(consistency_loss(goal, goal, "huber")) == 0.0
    far = torch.full((2, 4), 0.5)
    assert float(consistency_loss(far, goal, "huber")) == pytest.approx(0.5 - 0.001, rel=1e-5)
    near = torch.full((2, 4), 1e-5)
    # d^2 / 2c near zero (float32 loses a little to the subtraction)
    assert float(consistency_loss(near, goal, "huber")) == pytest.approx(1e-10 / 2 / 0.001, rel=1e-2)
    assert float(consistency_loss(far, goal, "l2")) == pytest.approx(0.25)


def test_export_adds_the_field_loras_to_a_shipped_folder(tmp_path: Path) -> None:
    """``export --add``: the TCD and PCM checkpoints' best weights go into the folder already there,
    in their real layouts (TCD with diffusers' ``format: pt`` metadata, PCM with none), and the marker
    says so; a LoRA distilled from another base is refused."""
    import json

    from safetensors import safe_open

    from devtools.pocket.export import add_field_loras
    from engine.pocket.model import MARKER, PCM_LORA_FILE, TCD_LORA_FILE

    unet = build_unet()
    lora = LoRA(unet, rank=POCKET_SPEC.lora_rank, alpha=POCKET_SPEC.lora_alpha)
    best = {k: v + 1 for k, v in lora.kohya_state_dict().items()}
    out, work = tmp_path / "pocket", tmp_path / "work"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"base": {"steps": 7}, "files": {"base": "base"}}), encoding="utf-8")
    for checkpoint in ("tcd-lora/tcd_lora.pt", "pcm-lora/pcm_lora_4.pt"):
        state = {
            "step": 90,
            "elapsed": 600.0,
            "base_step": 7,
            "kohya": lora.kohya_state_dict(),
            "best": {"step": 30, "elapsed": 120.0, "score": 0.5, "weights": best},
        }
        save_checkpoint(work / checkpoint, state)
    marker = add_field_loras(work, out)
    assert marker["files"] == {"base": "base", "tcd_lora": TCD_LORA_FILE, "pcm_lora": PCM_LORA_FILE}
    assert marker["tcd_lora"]["selected"]["step"] == 30
    assert json.loads((out / MARKER).read_text(encoding="utf-8")) == marker
    for file, metadata in ((TCD_LORA_FILE, {"format": "pt"}), (PCM_LORA_FILE, None)):
        with safe_open(str(out / file), framework="pt") as handle:
            assert handle.metadata() == metadata
            key = next(k for k in handle.keys() if k.endswith(".lora_up.weight"))  # noqa: SIM118
            tensor = handle.get_tensor(key)
            assert tensor.dtype == torch.float16 and torch.equal(tensor.float(), best[key])
    (out / MARKER).write_text(json.dumps({"base": {"steps": 8}, "files": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="base step 7"):
        add_field_loras(work, out)
