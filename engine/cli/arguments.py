"""What every command shares: the exit codes, the one-line error, the argument types, and the model
files given by role turned into the engine's ModelPaths.

Exit codes: 0 done; 2 bad input (one line on stderr, nothing written); 1 an unexpected failure;
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from engine.contract.errors import RequestError
from engine.contract.limits import MAX_SEED, MAX_SIDE
from engine.contract.modes import MODES, ModelRole
from engine.contract.validation import parse_style_weight
from engine.files.model_files import check_style_lora, check_vae
from engine.files.model_paths import ModelPaths, StyleLora
from engine.files.safe_paths import special_file_problem

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_VRAM_GIB = 4096.0


class UsageError(Exception):
    """Bad command-line input; its message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; the contract is one clear line and code 2.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def say(message: str) -> None:
    print(f"fewstep: {message}", file=sys.stderr, flush=True)


def size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) < 6 for p in parts):
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 1024x1024 (WIDTHxHEIGHT)")
    width, height = int(parts[0]), int(parts[1])
    if width > MAX_SIDE or height > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"size {text}: width and height must be at most {MAX_SIDE}")
    if width % 8 or height % 8 or width < 8 or height < 8:
        raise argparse.ArgumentTypeError(
            f"size {text}: width and height must be multiples of 8 (e.g. 1024x1024)"
        )
    return width, height


def seed(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {text!r} must be a whole number from 0 to {MAX_SEED}")
    return int(text)


def mode_value(text: str) -> tuple[str, str]:
    mode, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(f"{text!r} must look like MODE=VALUE, e.g. lcm=4")
    if mode not in MODES:
        raise argparse.ArgumentTypeError(
            f"unknown mode {mode!r} in {text!r}; known modes: {', '.join(MODES)}"
        )
    return mode, value


def eta_value(text: str) -> tuple[str, float]:
    """--eta MODE=E: a mode whose card passes an eta (TCD's gamma), from 0 to 1."""
    mode, value = mode_value(text)
    if MODES[mode].eta is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: mode {mode} takes no eta (only modes whose card passes one)"
        )
    try:
        eta = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: eta must be a number from 0 to 1") from None
    if not 0.0 <= eta <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: eta must be from 0 to 1")
    return mode, eta


def role_path(text: str) -> tuple[str, Path]:
    """--model ROLE=PATH: any file a mode declares, by its role (tcd-lora, dmd2-unet, lcm-lora...)."""
    role, sep, path = text.partition("=")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} must look like ROLE=PATH, e.g. tcd-lora=TCD/pytorch_lora_weights.safetensors"
        )
    known = sorted(set(MODES.role_files()) | {ModelRole.BASE})
    if role not in known and role in MODES and (taken := MODES[role].role) is not None:
        role = taken  # a mode's name stands for its file's role: --model tcd=... is tcd-lora
    if role not in known:
        raise argparse.ArgumentTypeError(f"unknown file role {role!r} in {text!r}; known: {', '.join(known)}")
    return role, Path(path)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The model files by role: the five options of their own, and --model ROLE=PATH for any role."""
    for role in ModelRole:
        parser.add_argument(f"--{role}", type=Path, metavar="PATH", help=f"the {role} file or folder")
    parser.add_argument(
        "--model",
        type=role_path,
        action="append",
        default=[],
        metavar="ROLE=PATH",
        help="any distillation file by the role its modes name (repeatable): "
        + ", ".join(sorted(set(MODES.role_files()) - set(ModelRole))),
    )
    parser.add_argument(
        "--modes-file",
        type=Path,
        metavar="PATH",
        help="a TOML file of your own modes, added to the built-in ones (and to the config folder's modes.toml)",
    )


def style_lora(text: str) -> StyleLora:
    path, sep, weight = text.rpartition(":")
    if sep and path:
        try:
            float(weight)
        except ValueError:
            pass  # a colon inside the path (C:\\...), no weight
        else:  # a number, but perhaps nan, inf or 1e30: the strict parser says which are fine
            try:
                return StyleLora(Path(path), parse_style_weight(weight, f"--lora {text}"))
            except RequestError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
    return StyleLora(Path(text), 1.0)


def out(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty: give a file or folder name")
    return Path(text)


def vram_gib(text: str) -> float:
    """--vram: free device memory in GiB, a positive number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB (e.g. 8 or 7.5)") from None
    if not 0 < value <= MAX_VRAM_GIB:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} GiB: give the free memory, above 0 and at most 4096 GiB")
    return value


def model_paths(args: argparse.Namespace) -> ModelPaths:
    """The files given by role (--base, --lcm-unet, ..., --lora, --vae, --base-config), each checked from
    its name and header; the built-in pocket model when none is given."""
    given: dict[str, Path | None] = {role: getattr(args, role.replace("-", "_")) for role in ModelRole}
    for role, path in getattr(args, "model", []):
        if given.get(role) is not None:
            raise UsageError(f"the {role} file is given twice (--{role} or --model {role}=): give it once")
        given[role] = path
    styles = tuple(args.lora)
    for style in styles:
        check_style_lora(style.path)
    if args.vae is not None:
        check_vae(args.vae)
    if not any(given.values()):
        from dataclasses import replace

        from engine.pocket.model import builtin_model_paths

        return replace(builtin_model_paths(), styles=styles, vae=args.vae)
    if given[ModelRole.BASE] is None:
        others = ", ".join(
            f"--{r}" if r in set(ModelRole) else f"--model {r}=" for r, p in given.items() if p is not None
        )
        raise UsageError(f"{others} needs --base: the SDXL base model whose text encoders and VAE it uses")
    if args.base_config is not None and (problem := special_file_problem(args.base_config)):
        raise UsageError(f"--base-config {problem}")
    if args.base_config is not None and not (args.base_config / "model_index.json").is_file():
        raise UsageError(f"--base-config {args.base_config}: not a folder with model_index.json")
    return ModelPaths.from_roles(given, base_config=args.base_config, vae=args.vae, styles=styles)
