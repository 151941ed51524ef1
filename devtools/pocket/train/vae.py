"""Recipe 1: the pocket VAE (AutoencoderKL, SDXL's 4 levels, 64x64 -> 8x8x4).

    python -m devtools.pocket.train.vae --seed 0 --out .pocket-work/vae --minutes 22
    python -m devtools.pocket.train.vae --seed 0 --out .pocket-work/vae-decoder --minutes 20 \\
        --decoder-from .pocket-work/vae/vae_final.pt   # optional, later: a better decoder

L1 + L2 reconstruction with a tiny KL term, 32 px crops for the first 40% of the time, then whole
images; at the end the latent statistics set ``scaling_factor`` so scaled latents have std 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devtools.pocket.shapes import draw_batch
from devtools.pocket.spec import build_vae
from devtools.pocket.train.common import (
    Clock,
    Log,
    base_parser,
    load_checkpoint,
    one_thread,
    restore_run_state,
    run_state,
    save_checkpoint,
)
from engine.pocket.grammar import random_prompt

BATCH = 16
LR = 1e-3
KL_WEIGHT = 1e-7
CROP_FRACTION = 0.4


def images(rng: np.random.Generator, count: int) -> torch.Tensor:
    prompts = [random_prompt(rng, position_probability=0.0) for _ in range(count)]
    return torch.from_numpy(draw_batch(prompts, rng))


def psnr(vae: Any, batch: torch.Tensor) -> float:
    with torch.no_grad():
        recon = vae.decode(vae.encode(batch).latent_dist.mode()).sample.clamp(-1, 1)
    mse = ((recon - batch) / 2).pow(2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())


@torch.no_grad()
def latent_scaling(vae: Any, batch: torch.Tensor) -> tuple[float, list[float], list[float]]:
    latents = vae.encode(batch).latent_dist.mode()
    std = float(latents.std())
    return 1.0 / std, latents.mean(dim=(0, 2, 3)).tolist(), latents.std(dim=(0, 2, 3)).tolist()


def report(checkpoint: Path, count: int = 400, seed: int = 30_000) -> dict[str, Any]:
    """Held-out PSNR and the scorer's verdicts on reconstructions of drawings with positions."""
    from devtools.pocket.scorer import score, summarize
    from devtools.pocket.shapes import draw
    from engine.pocket.grammar import random_prompt

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    vae = build_vae()
    vae.load_state_dict(state["model"])
    vae.eval()
    rng = np.random.default_rng(seed)
    prompts = [random_prompt(rng, position_probability=1.0) for _ in range(count)]
    batch = torch.from_numpy(np.stack([draw(p, rng) for p in prompts]).astype(np.float32))
    batch = batch.permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        recon = vae.decode(vae.encode(batch).latent_dist.mode()).sample.clamp(-1, 1)
    mse = ((recon - batch) / 2).pow(2).mean(dim=(1, 2, 3))
    images = ((recon.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    summary = summarize([score(image, p) for image, p in zip(images, prompts, strict=True)])
    return {"psnr": float((10 * torch.log10(1 / mse)).mean()), **summary.as_dict()}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(out=Path())
    parser.add_argument("--report", type=Path, help="only report on this checkpoint")
    parser.add_argument(
        "--decoder-from",
        type=Path,
        help="fine-tune only the decoder of this vae_final.pt: the encoder, so the latents and every"
        " model trained on them, stay exactly as they are",
    )
    args = parser.parse_args()
    one_thread()
    if args.report is not None:
        print(report(args.report))
        return
    out: Path = args.out
    log = Log(out)
    torch.manual_seed(args.seed)
    vae = build_vae()
    source: dict[str, Any] | None = None
    if args.decoder_from is not None:
        source = torch.load(args.decoder_from, map_location="cpu", weights_only=False)
        assert source is not None
        vae.load_state_dict(source["model"])
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    peak = LR if source is None else LR / 3
    optimizer = torch.optim.Adam([p for p in vae.parameters() if p.requires_grad], lr=peak)
    rng = np.random.default_rng(args.seed)
    step, elapsed = 0, 0.0
    checkpoint = out / "vae.pt"
    if (state := load_checkpoint(checkpoint)) is not None:
        vae.load_state_dict(state["model"])
        step, elapsed = restore_run_state(state, optimizer, rng)
        log(event="resume", step=step, elapsed=elapsed)
    held_out = images(np.random.default_rng(10_000 + args.seed), 128)
    total = args.minutes * 60
    clock = Clock(elapsed)
    last_save = clock.elapsed

    def save() -> None:
        save_checkpoint(
            checkpoint,
            {
                "model": vae.state_dict(),
                **run_state(optimizer, rng, step, clock.elapsed),
            },
        )

    while clock.elapsed < total:
        progress = clock.elapsed / total
        lr = peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = images(rng, BATCH)
        if source is None and progress < CROP_FRACTION:
            x0, y0 = (int(v) for v in rng.integers(0, 33, size=2))
            batch = batch[:, :, y0 : y0 + 32, x0 : x0 + 32]
        if source is None:
            posterior = vae.encode(batch).latent_dist
            recon = vae.decode(posterior.sample()).sample
            loss = KL_WEIGHT * posterior.kl().mean()
        else:
            with torch.no_grad():
                latents = vae.encode(batch).latent_dist.mode()
            recon = vae.decode(latents).sample
            loss = torch.zeros(())
        loss = loss + (recon - batch).abs().mean() + (recon - batch).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 25 == 0:
            log(step=step, minutes=round(clock.elapsed / 60, 2), loss=round(float(loss), 5), lr=lr)
        if clock.elapsed - last_save > args.checkpoint_minutes * 60:
            save()
            last_save = clock.elapsed
            log(event="checkpoint", step=step, psnr=round(psnr(vae, held_out), 2))
    save()
    scale, means, stds = latent_scaling(vae, images(np.random.default_rng(20_000 + args.seed), 256))
    final = {
        "step": step,
        "minutes": clock.elapsed / 60,
        "psnr": psnr(vae, held_out),
        "scaling_factor": scale,
    }
    log(event="done", **final, channel_means=means, channel_stds=stds)
    save_checkpoint(out / "vae_final.pt", {"model": vae.state_dict(), **final})


if __name__ == "__main__":
    main()
