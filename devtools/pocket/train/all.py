"""Every recipe of the pocket model in order, then the export: one command, one thread, resumable.

    nohup python -m devtools.pocket.train.all --seed 0 --work .pocket-work > .pocket-work/all.out 2>&1 &

Each stage runs as its own process and resumes from the checkpoint in its folder, so killing the
driver (or the session ending) loses at most a few minutes: run the same command again to go on.
``--only`` picks stages; ``--minutes STAGE=M`` changes a stage's total time (across resumes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# (stage, module arguments, default total minutes). The distillations take the base's checkpoint as
# it is when they start.
STAGES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("vae", ("devtools.pocket.train.vae", "--out", "{work}/vae"), 22.0),
    (
        "base",
        ("devtools.pocket.train.base", "--vae", "{work}/vae/vae_final.pt", "--out", "{work}/base"),
        70.0,
    ),
    # The decoder alone: the latents, and so the base and its distillations, do not change.
    (
        "vae-decoder",
        (
            "devtools.pocket.train.vae",
            "--out",
            "{work}/vae-decoder",
            "--decoder-from",
            "{work}/vae/vae_final.pt",
        ),
        12.0,
    ),
    ("lcm", ("devtools.pocket.train.distill", "lcm", "--out", "{work}/lcm"), 18.0),
    (
        "lightning-unet-4",
        ("devtools.pocket.train.distill", "lightning-unet", "--steps", "4", "--out", "{work}/lightning"),
        6.0,
    ),
    (
        "lightning-unet-2",
        ("devtools.pocket.train.distill", "lightning-unet", "--steps", "2", "--out", "{work}/lightning"),
        5.0,
    ),
    ("lcm-lora", ("devtools.pocket.train.distill", "lcm-lora", "--out", "{work}/lcm-lora"), 18.0),
    (
        "lightning-lora-4",
        ("devtools.pocket.train.distill", "lightning-lora", "--steps", "4", "--out", "{work}/lightning"),
        4.0,
    ),
    (
        "lightning-lora-2",
        ("devtools.pocket.train.distill", "lightning-lora", "--steps", "2", "--out", "{work}/lightning"),
        4.0,
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(".pocket-work"))
    parser.add_argument("--export", type=Path, default=Path("resources/pocket"))
    parser.add_argument("--only", nargs="*", help="stages to run (default: all)")
    parser.add_argument("--minutes", nargs="*", default=[], help="STAGE=MINUTES overrides")
    args = parser.parse_args()
    minutes = {k: float(v) for k, v in (item.split("=", 1) for item in args.minutes)}
    base_checkpoint = str(args.work / "base" / "base.pt")
    for name, module_args, default in STAGES:
        if args.only and name not in args.only:
            continue
        command = [sys.executable, "-m", *(a.format(work=args.work) for a in module_args)]
        command += ["--seed", str(args.seed), "--minutes", str(minutes.get(name, default))]
        if module_args[0].endswith("distill"):
            command += ["--base", base_checkpoint]
        print("running", " ".join(command), flush=True)
        subprocess.run(command, check=True)
        if name in ("base", "vae-decoder"):
            # Whatever comes next, the app has a usable model from here on.
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "devtools.pocket.export",
                    "--work",
                    str(args.work),
                    "--out",
                    str(args.export),
                ],
                check=True,
            )
    subprocess.run(
        [sys.executable, "-m", "devtools.pocket.export", "--work", str(args.work), "--out", str(args.export)],
        check=True,
    )


if __name__ == "__main__":
    main()
