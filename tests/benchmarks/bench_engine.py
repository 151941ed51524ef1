"""Engine benchmark: prints figures measured side by side in one run on the tiny fixtures.

    .venv/bin/python -m tests.benchmarks.bench_engine [--repeats N] [--threads N]

Not a test: these machines are noisy, so each figure is a ratio of two things measured in the same
run, alternating, with medians. Goals (issue 2): mode switch >= 100x faster than rebuilding the
pipeline as FastSD CPU does; one copy of the shared weights with all five modes resident; engine
overhead over a plain diffusers call <= 3%; a five-mode comparison <= 1.0x the sum of five single
generations. Issue 22: a fused LoRA mode's step <= 1.03x the base UNet's step (same size and batch,
CFG off for both), and what one fuse costs in seconds and bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"

import torch

from devtools.tiny_model import TinyModelSet, TinySpec, build_tiny_model_set
from engine.contract.modes import DEFAULT_COMPARISON, MODES
from engine.contract.placement import LoraRoute, Part
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.runtime.engine import Engine
from engine.runtime.libraries import quiet_diffusers

diffusers = quiet_diffusers()
from diffusers import (  # noqa: E402
    DDIMScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import load_file  # noqa: E402

PROMPT = "a large red circle on a blue background"
SEED = 0
# Wider than the test fixtures so that weights, not the interpreter, dominate memory figures.
MEMORY_SPEC = TinySpec(unet_channels=(64, 128, 256), unet_heads=(2, 4, 8), unet_transformer_layers=(1, 2, 2))


def paths_of(models: TinyModelSet) -> ModelPaths:
    return ModelPaths(
        base=models.base,
        lcm_unet=models.lcm_unet,
        lcm_lora=models.lcm_lora,
        lightning_unet=models.lightning_unet,
        lightning_lora=models.lightning_lora,
    )


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# --- plain diffusers, as each model card writes it (and as FastSD CPU rebuilds it) -------------


def plain_pipeline(models: TinyModelSet, mode: str) -> Any:
    kwargs: dict[str, Any] = {"dtype": torch.float32, "local_files_only": True}
    if mode == "lcm":
        kwargs["unet"] = UNet2DConditionModel.from_pretrained(models.lcm_unet, dtype=torch.float32)
    if mode == "lightning":
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(models.base, subfolder="unet")
        )
        unet.load_state_dict(load_file(str(models.lightning_unet)))
        kwargs["unet"] = unet
    pipe = StableDiffusionXLPipeline.from_pretrained(models.base, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.scheduler.config
    if mode == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(config)
    elif mode in ("lcm", "lcm-lora"):
        pipe.scheduler = LCMScheduler.from_config(config)
    else:
        pipe.scheduler = EulerDiscreteScheduler.from_config(config, timestep_spacing="trailing")
    if mode == "lcm-lora":
        pipe.load_lora_weights(str(models.lcm_lora))
    if mode == "lightning-lora":
        pipe.load_lora_weights(str(models.lightning_lora))
    return pipe


CARD_SETTINGS = {"ddim": (30, 5.0), "lcm": (4, 8.0), "lcm-lora": (4, 1.0), "lightning": (4, 0.0),
                 "lightning-lora": (4, 0.0)}  # fmt: skip


def plain_call(pipe: Any, mode: str) -> Any:
    steps, guidance = CARD_SETTINGS[mode]
    with torch.inference_mode():
        return pipe(
            PROMPT,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(SEED),
        ).images[0]


def engine_call(engine: Engine, *modes: str) -> Any:
    return engine.run(
        GenerationRequest(prompt=PROMPT, seeds=(SEED,), modes=tuple(ModeSettings(mode=m) for m in modes))
    )


# --- the four figures -------------------------------------------------------------------------


def bench_switch(engine: Engine, models: TinyModelSet, repeats: int) -> None:
    cycle = [*DEFAULT_COMPARISON, "lcm-lora", "ddim", "lightning-lora", "lcm", "lcm-lora"]
    switches = []
    for _ in range(repeats):
        for mode in cycle:
            switches.append(engine.switch_to(mode))
    rebuild = median_seconds(lambda: plain_pipeline(models, "lcm-lora"), max(3, repeats // 2))
    switch = statistics.median(switches)
    worst = max(switches)
    print(f"mode switch (engine):            median {switch * 1e3:8.2f} ms, worst {worst * 1e3:.2f} ms"
          f" over {len(switches)} switches")  # fmt: skip
    print(f"rebuild pipeline + LoRA (FastSD): median {rebuild * 1e3:8.2f} ms")
    print(
        f"  -> switch is {rebuild / switch:,.0f}x faster (median), {rebuild / worst:,.0f}x (worst); goal >= 100x"
    )


def bench_overhead(engine: Engine, models: TinyModelSet, repeats: int) -> None:
    print("engine vs plain diffusers, same settings, one image (median of alternating runs):")
    ratios = []
    for mode in DEFAULT_COMPARISON:
        pipe = plain_pipeline(models, mode)
        plain_call(pipe, mode)
        engine_call(engine, mode)  # warm both
        plain_samples: list[float] = []
        engine_samples: list[float] = []
        for _ in range(repeats):
            plain_samples.append(seconds(partial(plain_call, pipe, mode)))
            engine_samples.append(seconds(partial(engine_call, engine, mode)))
        plain, ours = statistics.median(plain_samples), statistics.median(engine_samples)
        ratios.append(ours / plain)
        print(
            f"  {mode:15} plain {plain * 1e3:8.1f} ms   engine {ours * 1e3:8.1f} ms   overhead {ours / plain - 1:+6.1%}"
        )
    print(f"  -> mean overhead {statistics.mean(ratios) - 1:+.1%}; goal <= +3%")


def bench_fusing(models: TinyModelSet, repeats: int) -> None:
    """The model cards fuse their LoRA for speed; the engine keeps adapters unfused to switch freely."""
    pipe = plain_pipeline(models, "lcm-lora")
    plain_call(pipe, "lcm-lora")
    unfused = statistics.median(seconds(partial(plain_call, pipe, "lcm-lora")) for _ in range(repeats))
    fuse = seconds(pipe.fuse_lora)
    fused = statistics.median(seconds(partial(plain_call, pipe, "lcm-lora")) for _ in range(repeats))
    unfuse = seconds(pipe.unfuse_lora)
    saved = unfused - fused
    verdict = (
        f"fusing pays after {(fuse + unfuse) / saved:.1f} images" if saved > 0 else "fusing does not pay here"
    )
    print(
        f"LCM-LoRA image unfused {unfused * 1e3:.1f} ms vs fused {fused * 1e3:.1f} ms"
        f" (fuse {fuse * 1e3:.1f} ms, unfuse {unfuse * 1e3:.1f} ms): {verdict}"
    )


def per_step(engine: Engine, mode: str, guidance: float) -> float:
    """The median step of one image of a mode at 4 steps and this guidance."""
    request = GenerationRequest(
        prompt=PROMPT, seeds=(SEED,), modes=(ModeSettings(mode=mode, steps=4, guidance=guidance),)
    )
    per_step: tuple[float, ...] = engine.run(request).results[0].timings.per_step
    return statistics.median(per_step)


def unet_step(engine: Engine, unet: Any) -> Callable[[], object]:
    """One UNet forward at 64x64, batch 1 (CFG off), on the engine's own prompt embeddings."""
    embeddings = engine.encode(PROMPT, "", with_negative=False)
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator("cpu").manual_seed(SEED))
    added = {"text_embeds": embeddings.pooled, "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])}

    def call() -> object:
        with torch.inference_mode():
            return unet(sample, 500, encoder_hidden_states=embeddings.prompt, added_cond_kwargs=added)

    return call


def bench_fused_step(models: TinyModelSet, repeats: int) -> None:
    """Each LoRA mode's step, fused in the slot and unfused on its twin, over the base UNet's step at
    the same size and batch, CFG off for both, alternating: the UNet forward alone (what the route
    changes), then whole engine steps (schedulers included: the base mode runs the LoRA mode's
    scheduler family, DDIM for LCM, Euler for Lightning). Then what one fuse costs."""
    fused_engine = Engine(paths_of(models), lora_route=LoraRoute.FUSED)
    unfused_engine = Engine(paths_of(models), lora_route=LoraRoute.UNFUSED)
    print("LoRA step over the base UNet's step, same size and batch, CFG off (medians of alternating runs):")
    for mode, base_mode in (("lcm-lora", "ddim"), ("lightning-lora", "euler")):
        fused_engine.switch_to(mode)  # fuses this LoRA into the slot
        unfused_engine.switch_to(mode)
        calls = {
            "base": unet_step(fused_engine, fused_engine.base.unet),
            "fused": unet_step(fused_engine, fused_engine.running_pipe(MODES[mode]).unet),
            "unfused": unet_step(unfused_engine, unfused_engine.running_pipe(MODES[mode]).unet),
        }
        forward: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(repeats * 20):
            for key, call in calls.items():
                forward[key].append(seconds(call))
        base, fused, unfused = (statistics.median(forward[k]) for k in ("base", "fused", "unfused"))
        print(
            f"  {mode:15} UNet forward: base {base * 1e3:6.2f} ms  fused {fused * 1e3:6.2f} ms"
            f" ({fused / base:.3f}x; goal <= 1.03x)  unfused {unfused * 1e3:6.2f} ms ({unfused / base:.3f}x)"
        )
        steps: dict[str, list[float]] = {"base": [], "fused": [], "unfused": []}
        for _ in range(repeats):
            steps["base"].append(per_step(fused_engine, base_mode, 1.0))
            steps["fused"].append(per_step(fused_engine, mode, 1.0))
            steps["unfused"].append(per_step(unfused_engine, mode, 1.0))
        base, fused, unfused = (statistics.median(steps[k]) for k in ("base", "fused", "unfused"))
        print(
            f"  {'':15} engine step:  {base_mode} {base * 1e3:6.2f} ms  fused {fused * 1e3:6.2f} ms"
            f" ({fused / base:.3f}x)  unfused {unfused * 1e3:6.2f} ms ({unfused / base:.3f}x)"
        )
    fuses = []
    for _ in range(repeats):
        for mode in ("lcm-lora", "lightning-lora"):
            engine_call(fused_engine, mode)
            fuses += fused_engine.placement_report()["fuses"]
    print(
        f"  one fuse (a switch between LoRA modes): median {statistics.median(f['seconds'] for f in fuses) * 1e3:.1f} ms,"
        f" {max(f['bytes'] for f in fuses) / 1024**2:.2f} MiB of slot weights written"
        f" (the base UNet's weights: {fused_engine.placer.parts[Part.BASE_UNET].size / 1024**2:.2f} MiB)"
    )


def bench_comparison(engine: Engine, repeats: int) -> None:
    together: list[float] = []
    alone: list[float] = []
    for _ in range(repeats):
        together.append(seconds(partial(engine_call, engine, *DEFAULT_COMPARISON)))
        alone.append(sum(seconds(partial(engine_call, engine, m)) for m in DEFAULT_COMPARISON))
    t, a = statistics.median(together), statistics.median(alone)
    print(
        f"five-mode comparison {t:.3f} s vs five single generations {a:.3f} s -> {t / a:.3f}x; goal <= 1.0x"
    )


# --- memory: each layout in its own process, so that one cannot free what the other loaded ------


def unique_parameter_bytes(modules: list[Any]) -> int:
    seen: dict[int, int] = {}
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def rss_bytes() -> int:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_probe(layout: str, root: str) -> None:
    models = build_tiny_model_set(Path(root), spec=MEMORY_SPEC)
    before = rss_bytes()
    if layout == "engine":
        engine = Engine(paths_of(models))
        for mode in DEFAULT_COMPARISON:
            engine.run(GenerationRequest(prompt=PROMPT, modes=(ModeSettings(mode=mode, steps=1),)))
        pipes = list(engine.pipes.values())
    else:
        pipes = [plain_pipeline(models, mode) for mode in DEFAULT_COMPARISON]
        for mode, pipe in zip(DEFAULT_COMPARISON, pipes, strict=True):
            with torch.inference_mode():
                pipe(PROMPT, num_inference_steps=1, guidance_scale=CARD_SETTINGS[mode][1])
    modules = [m for p in pipes for m in (p.unet, p.vae, p.text_encoder, p.text_encoder_2)]
    figures = {"rss_delta": rss_bytes() - before, "weights": unique_parameter_bytes(modules)}
    if layout == "engine":
        # What one copy of everything weighs: each distinct model once, plus the LoRA matrices.
        base = engine.base
        distinct = [base.unet, base.vae, base.text_encoder, base.text_encoder_2]
        distinct += [engine.pipes[key].unet for key in engine.pipes if str(key) in ("lcm", "lightning")]
        lora_bytes = sum(
            p.numel() * p.element_size()
            for key in engine.pipes
            if str(key).endswith("-lora")
            for name, p in engine.pipes[key].unet.named_parameters()
            if "lora_" in name
        )
        figures["one_copy"] = sum(unique_parameter_bytes([m]) for m in distinct) + lora_bytes
    print(json.dumps(figures))


def bench_memory(root: Path) -> None:
    figures = {}
    for layout in ("engine", "separate"):
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.bench_engine", "--memory-probe", layout, str(root)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures[layout] = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 1024 * 1024
    for layout, f in figures.items():
        label = "engine, five modes resident" if layout == "engine" else "five separate pipelines"
        print(
            f"{label:30} weights {f['weights'] / mib:7.1f} MiB   RSS growth {f['rss_delta'] / mib:7.1f} MiB"
        )
    one_copy = figures["engine"]["one_copy"]
    print(
        f"{'one copy of each distinct model':30} weights {one_copy / mib:7.1f} MiB (base, LCM UNet, Lightning UNet, LoRAs)"
    )
    ratio = figures["separate"]["weights"] / figures["engine"]["weights"]
    verdict = "exactly one copy" if figures["engine"]["weights"] == one_copy else "MORE than one copy"
    print(
        f"  -> five pipelines hold {ratio:.2f}x the engine's weights; the engine holds {verdict}"
        " (goal: one copy of the shared weights)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-probe", nargs=2, metavar=("LAYOUT", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(*args.memory_probe)
        return
    with tempfile.TemporaryDirectory() as tmp:
        models = build_tiny_model_set(Path(tmp) / "tiny")
        print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {args.threads} thread(s), "
              f"{args.repeats} repeats, tiny fixtures (64x64)")  # fmt: skip
        engine = Engine(paths_of(models))
        bench_switch(engine, models, args.repeats)
        bench_overhead(engine, models, args.repeats)
        bench_comparison(engine, args.repeats)
        bench_fusing(models, args.repeats)
        bench_fused_step(models, args.repeats)
        bench_memory(Path(tmp) / "wider")


if __name__ == "__main__":
    main()
