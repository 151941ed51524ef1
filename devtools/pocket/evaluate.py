"""Score a pocket pipeline on prompts of the grammar: generate, then ask the scorer.

    python -m devtools.pocket.evaluate --base resources/pocket/base --prompts 96 --steps 30 --guidance 5
    python -m devtools.pocket.evaluate --work .pocket-work --prompts 96   # the newest checkpoints

Images are generated in batches through the plain diffusers pipeline with the mode's scheduler, each
image from its own ``torch.Generator`` seed, exactly as the engine draws them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devtools.pocket.scorer import Score, Summary, score, summarize
from engine.pocket.grammar import Prompt, evaluation_prompts


def load_pipeline(base: Path) -> Any:
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(
        base, dtype=torch.float32, variant="fp16", use_safetensors=True, local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def scheduler(pipe: Any, name: str, **overrides: Any) -> Any:
    import diffusers

    return getattr(diffusers, name).from_config(pipe.scheduler.config, **overrides)


def generate(
    pipe: Any,
    prompts: Sequence[Prompt],
    seeds: Sequence[int],
    *,
    steps: int,
    guidance: float,
    batch: int = 32,
    eta: float | None = None,
) -> list[np.ndarray]:
    """One uint8 [64, 64, 3] image per (prompt, seed) pair, in order (``eta``: the TCD mode's gamma)."""
    images: list[np.ndarray] = []
    extra: dict[str, Any] = {} if eta is None else {"eta": eta}
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds[start : start + batch]]
        with torch.inference_mode():
            out = pipe(
                [p.text for p in chunk],
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generators,
                output_type="np",
                **extra,
            ).images
        images.extend((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
    return images


def evaluate(
    pipe: Any,
    prompts: Sequence[Prompt],
    *,
    steps: int,
    guidance: float,
    seed: int = 0,
    eta: float | None = None,
) -> tuple[Summary, list[Score], float]:
    seeds = [seed + i for i in range(len(prompts))]
    start = time.perf_counter()
    images = generate(pipe, prompts, seeds, steps=steps, guidance=guidance, eta=eta)
    seconds = (time.perf_counter() - start) / len(prompts)
    scores = [score(image, prompt) for image, prompt in zip(images, prompts, strict=True)]
    return summarize(scores), scores, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, help="a pocket base folder (resources/pocket/base)")
    parser.add_argument("--work", type=Path, help="or: export the checkpoints under this folder first")
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--scheduler", default="DDIMScheduler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, help="save the first 32 images as a PNG grid")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.work is not None:
        import tempfile

        from devtools.pocket.export import export
        from engine.pocket.model import BASE_DIR

        folder = Path(tempfile.mkdtemp(prefix="pocket-eval-")) / "pocket"
        marker = export(args.work, folder, allow_stale=True)
        print(json.dumps({"base": marker["base"]}))
        args.base = folder / BASE_DIR
    if args.base is None:
        parser.error("give --base or --work")
    pipe = load_pipeline(args.base)
    pipe.scheduler = scheduler(pipe, args.scheduler)
    prompts = evaluation_prompts(args.prompts, seed=args.seed)
    summary, _, seconds = evaluate(pipe, prompts, steps=args.steps, guidance=args.guidance)
    print(json.dumps({**summary.as_dict(), "seconds_per_image": seconds}))
    if args.grid is not None:
        from PIL import Image

        images = generate(pipe, prompts[:32], list(range(32)), steps=args.steps, guidance=args.guidance)
        rows = [np.concatenate(images[i : i + 8], axis=1) for i in range(0, 32, 8)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)


if __name__ == "__main__":
    main()
