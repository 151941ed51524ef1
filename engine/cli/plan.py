"""`fewstep plan`: where each model part would live on a card with this much free memory.

Sizes come from the files' safetensors headers: no weight is loaded, and torch is imported only to
measure the free memory of a CUDA device when neither --vram nor --ram is given. Without a CUDA
device the plan is the CPU's: RAM is the device, and the full distilled UNets may wait on disk.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

from engine.cli.arguments import EXIT_OK, add_model_flags, model_paths, size, style_lora, vram_gib
from engine.contract.errors import RequestError
from engine.contract.modes import DEFAULT_COMPARISON, MODES
from engine.contract.placement import GIB, LoraRoute, PlanInput, five_mode_check, plan_placement
from engine.contract.placement_text import describe_placement
from engine.files.part_sizes import model_sizes

DTYPES = ("fp16", "bf16", "fp32")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `plan` subcommand, with the same model flags as compare."""
    add_model_flags(parser)
    parser.add_argument("--lora", type=style_lora, action="append", default=[], metavar="PATH[:WEIGHT]")
    parser.add_argument("--vae", type=Path, metavar="PATH", help="a replacement VAE")
    parser.add_argument(
        "--base-config", type=Path, metavar="DIR", help="config folder for a single-file --base"
    )
    parser.add_argument(
        "--vram",
        type=vram_gib,
        metavar="GiB",
        help="free device memory (default: measured on the CUDA device)",
    )
    parser.add_argument(
        "--ram",
        type=vram_gib,
        metavar="GiB",
        help="plan for the CPU with this much available RAM, where the full distilled UNets wait on disk"
        " (default without --vram and without a CUDA device: the RAM available now)",
    )
    parser.add_argument(
        "--lora-route",
        choices=[str(r) for r in LoraRoute],
        default=str(LoraRoute.AUTO),
        help="plan the LoRA modes fused in one slot, unfused, or auto (fused where the slot fits)",
    )
    parser.add_argument("--size", type=size, default=(1024, 1024), help="WIDTHxHEIGHT (default 1024x1024)")
    parser.add_argument("--dtype", choices=DTYPES, default="fp16", help="the run's dtype (default fp16)")
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_COMPARISON),
        help=f"comma-separated, from: {', '.join(MODES)} (default: {','.join(DEFAULT_COMPARISON)})",
    )


def measured_free_bytes() -> tuple[int, bool]:
    """The free memory of the first CUDA device; without one, the RAM available to plan the CPU
    with (True); RequestError where neither is known."""
    import torch

    if not torch.cuda.is_available():
        from engine.runtime.memory import available_ram

        if (ram := available_ram()) is None:
            raise RequestError(
                "--vram GiB or --ram GiB is needed: there is no CUDA device or /proc/meminfo here"
            )
        return ram, True
    free, _total = torch.cuda.mem_get_info()
    return int(free), False


def run(args: argparse.Namespace) -> int:
    names = tuple(n.strip() for n in args.modes.split(",") if n.strip())
    unknown = [n for n in names if n not in MODES]
    if unknown or not names:
        raise RequestError(
            f"--modes: unknown mode {', '.join(unknown) or '(none)'}; known: {', '.join(MODES)}"
        )
    paths = model_paths(args)
    sizes = model_sizes(paths)
    if args.vram is not None and args.ram is not None:
        raise RequestError("--vram plans a card and --ram the CPU: give one of them")
    if args.vram is not None or args.ram is not None:
        free, ram = int((args.vram if args.vram is not None else args.ram) * GIB), args.ram is not None
    else:
        free, ram = measured_free_bytes()
    width, height = args.size
    in_dtype = sizes.bytes_in(args.dtype)
    placement = plan_placement(
        PlanInput(
            sizes=in_dtype,
            dtype=args.dtype,
            free_bytes=free,
            width=width,
            height=height,
            modes=names,
            vae_upcast=sizes.vae_upcast,
            ram=ram,
        ),
        lora_route=LoraRoute(args.lora_route),
    )
    five = five_mode_check(
        in_dtype,
        args.dtype,
        free,
        vae_upcast=sizes.vae_upcast,
        lora_route=LoraRoute(args.lora_route),
        ram=ram,
    )
    lines = [
        f"{sizes.parameters / 1e9:.3f} B parameters in the given files (read from their headers)",
        *describe_placement(placement, five),
    ]
    # On a terminal, folded to its width; piped (grep, a script), one line per fact.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print("\n".join(folded(lines, width)))
    return EXIT_OK


def folded(lines: Iterable[str], width: int | None) -> list[str]:
    """Each line longer than width folded at spaces, its continuation indented under its own text."""
    if width is None:
        return list(lines)
    width = max(width, 60)
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent + "    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return out
