"""Recipe 2: the pocket base model: SDXL UNet and both CLIP text encoders, trained together.

    python -m devtools.pocket.train.base --seed 0 --vae .pocket-work/vae/vae_final.pt \
        --out .pocket-work/base --minutes 90

Epsilon prediction on SDXL's noise schedule (scaled_linear 0.00085 to 0.012, 1000 steps) with min-SNR
weighting (gamma 5); prompts name the position 75% of the time; 10% of the prompts are dropped to the
zero embeddings SDXL's pipeline uses for an empty negative prompt (force_zeros_for_empty_prompt), so
classifier-free guidance works. EMA of all weights (decay 0.999). The latents of a fixed set of drawings
are encoded once by the VAE and cached in the output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from devtools.pocket.shapes import draw_batch
from devtools.pocket.spec import build_unet, build_vae
from devtools.pocket.text import build_text_encoders, encode, load_tokenizers, time_ids, write_tokenizers
from devtools.pocket.train.common import (
    EMA,
    Clock,
    Log,
    base_parser,
    load_checkpoint,
    one_thread,
    restore_run_state,
    run_state,
    save_checkpoint,
)
from engine.pocket.grammar import Prompt, all_prompts

POSITION_PROBABILITY = 0.75
DROP_PROBABILITY = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.999
WARMUP = 300


def alphas_cumprod() -> torch.Tensor:
    """SDXL's training schedule (scheduler_config.json: scaled_linear, 0.00085 to 0.012)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


class TextUNet(nn.Module):
    """The trained modules of the base pipeline, in one module for the optimizer and the EMA."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed * 1009 + 4)
        self.unet = build_unet()
        self.te1, self.te2 = build_text_encoders(seed)


class PromptTable:
    """Token ids of every sentence of the grammar, looked up by attributes."""

    def __init__(self, tokenizers: tuple[Any, Any]):
        texts = [prompt.text for prompt in all_prompts()]
        self.index = {text: i for i, text in enumerate(texts)}
        from devtools.pocket.text import tokenize

        self.ids1 = tokenize(tokenizers[0], texts)
        self.ids2 = tokenize(tokenizers[1], texts)

    def ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.tensor([self.index[t] for t in texts])
        return self.ids1[rows], self.ids2[rows]


def make_latent_cache(
    path: Path, vae_checkpoint: Path | Any, count: int, seed: int, log: Log
) -> dict[str, Any]:
    """Latents of ``count`` drawings; ``vae_checkpoint`` is a VAE recipe's file or a loaded AutoencoderKL."""
    if path.is_file():
        cache: dict[str, Any] = torch.load(path, weights_only=False)
        return cache
    if isinstance(vae_checkpoint, Path):
        state = torch.load(vae_checkpoint, weights_only=False)
        vae = build_vae(state["scaling_factor"])
        vae.load_state_dict(state["model"])
        scaling_factor = float(state["scaling_factor"])
    else:
        vae = vae_checkpoint
        scaling_factor = float(vae.config.scaling_factor)
    vae.eval()
    rng = np.random.default_rng(seed + 777)
    from engine.pocket.grammar import random_prompt

    prompts = [random_prompt(rng, position_probability=1.0) for _ in range(count)]
    latents = []
    with torch.no_grad():
        for start in range(0, count, 100):
            images = torch.from_numpy(draw_batch(prompts[start : start + 100], rng))
            latents.append(vae.encode(images).latent_dist.mode() * scaling_factor)
            if start % 2000 == 0:
                log(event="encoding", done=start)
    cache = {
        "latents": torch.cat(latents),
        "attributes": [(p.size, p.color, p.shape, p.background, p.position) for p in prompts],
        "scaling_factor": scaling_factor,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache, path)
    return cache


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--vae", type=Path, required=True, help="vae_final.pt of the VAE recipe")
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-4)
    args = parser.parse_args()
    one_thread()
    out: Path = args.out
    log = Log(out)
    write_tokenizers_once(out / "tokenizers")
    table = PromptTable(load_tokenizers(out / "tokenizers"))
    cache = make_latent_cache(out / "latents.pt", args.vae, args.images, args.seed, log)
    latents: torch.Tensor = cache["latents"]
    attributes: list[tuple[str, str, str, str, str]] = cache["attributes"]
    log(event="data", count=len(latents), latent_std=float(latents.std()), latent_mean=float(latents.mean()))

    model = TextUNet(args.seed)
    log(event="model", parameters=sum(p.numel() for p in model.parameters()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    ema = EMA(model, EMA_DECAY)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    step, elapsed = 0, 0.0
    checkpoint = out / "base.pt"
    if (state := load_checkpoint(checkpoint)) is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        step, elapsed = restore_run_state(state, optimizer, rng)
        log(event="resume", step=step, elapsed=elapsed)
    ac = alphas_cumprod()
    clock = Clock(elapsed)
    last_save = clock.elapsed
    total = args.minutes * 60
    ids_time = time_ids(args.batch)
    running = 0.0

    def save() -> None:
        save_checkpoint(
            checkpoint,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                **run_state(optimizer, rng, step, clock.elapsed),
                "scaling_factor": cache["scaling_factor"],
            },
        )

    model.train()
    while clock.elapsed < total:
        lr = args.lr * min(1.0, (step + 1) / WARMUP)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = rng.integers(0, len(latents), size=args.batch)
        texts = []
        for row in rows:
            size, color, shape, background, position = attributes[row]
            keep = rng.random() < POSITION_PROBABILITY
            texts.append(Prompt(size, color, shape, background, position if keep else None).text)
        ids1, ids2 = table.ids(texts)
        hidden, pooled = encode(model.te1, model.te2, ids1, ids2)
        keep_text = torch.from_numpy(rng.random(args.batch) >= DROP_PROBABILITY).float()
        hidden = hidden * keep_text[:, None, None]
        pooled = pooled * keep_text[:, None]
        x0 = latents[torch.from_numpy(rows)]
        t = torch.randint(0, 1000, (args.batch,))
        noise = torch.randn_like(x0)
        a = ac[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = model.unet(
            xt, t, hidden, added_cond_kwargs={"text_embeds": pooled, "time_ids": ids_time}
        ).sample
        snr = ac[t] / (1 - ac[t])
        weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr
        loss = (weight * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        ema.update(model, min(EMA_DECAY, (1 + step) / (10 + step)))
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            log(step=step, minutes=round(clock.elapsed / 60, 2), loss=round(running, 5), lr=lr)
        if clock.elapsed - last_save > args.checkpoint_minutes * 60:
            save()
            last_save = clock.elapsed
            log(event="checkpoint", step=step)
    save()
    log(event="done", step=step, minutes=clock.elapsed / 60)


def write_tokenizers_once(folder: Path) -> None:
    if not (folder / "tokenizer_2" / "tokenizer_config.json").is_file():
        write_tokenizers(folder)


if __name__ == "__main__":
    main()
