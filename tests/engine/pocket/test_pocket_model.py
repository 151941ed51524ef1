"""The shipped pocket model: every file in the layout of its real counterpart, loaded by the engine's
own code path, and a 2-step run of every mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import DEFAULT_COMPARISON, MODES, ModelRole
from engine.contract.request import GenerationRequest, ModeSettings
from engine.files.model_paths import ModelPaths
from engine.pocket.grammar import WORDS
from engine.pocket.model import (
    BASE_DIR,
    LCM_DIR,
    LCM_LORA_FILE,
    MARKER,
    PCM_LORA_FILE,
    PCM_LORA_ROLE,
    TCD_LORA_FILE,
    TCD_LORA_ROLE,
    lightning_lora_file,
    lightning_unet_file,
    pocket_model_paths,
)
from engine.runtime.engine import Engine
from tests.conftest import REPO_ROOT

POCKET = REPO_ROOT / "resources" / "pocket"
PROMPT = "a large red circle on a blue background, top left"
LIMIT_BYTES = 40_000_000

pytestmark = pytest.mark.skipif(not (POCKET / MARKER).is_file(), reason="resources/pocket not exported yet")


def pocket_paths(steps: int) -> ModelPaths:
    """The paths the application gives the engine for the built-in model: every file present."""
    paths = pocket_model_paths(POCKET, lightning_steps=steps)
    assert paths is not None
    assert None not in (paths.lcm_unet, paths.lcm_lora, paths.lightning_unet, paths.lightning_lora)
    assert None not in (paths.get(TCD_LORA_ROLE), paths.get(PCM_LORA_ROLE))
    return paths


@pytest.fixture(scope="module", params=[4, 2], ids=["4step", "2step"])
def pocket_engine(request: pytest.FixtureRequest) -> Engine:
    return Engine(pocket_paths(request.param))


def header(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str] | None]:
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()  # noqa: SIM118


def read_json(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_all_files_present_and_small() -> None:
    for steps in (4, 2):
        paths = pocket_paths(steps)
        for path in (
            paths.base,
            paths.lcm_unet,
            paths.lcm_lora,
            POCKET / TCD_LORA_FILE,
            POCKET / PCM_LORA_FILE,
        ):
            assert path is not None and path.exists(), path
        assert (POCKET / lightning_unet_file(steps)).is_file()
        assert (POCKET / lightning_lora_file(steps)).is_file()
    total = sum(p.stat().st_size for p in POCKET.rglob("*") if p.is_file())
    assert total <= LIMIT_BYTES, f"{total / 1e6:.1f} MB"


def test_base_folder_is_in_the_real_layout() -> None:
    base = POCKET / BASE_DIR
    index = read_json(base / "model_index.json")
    assert (
        index["_class_name"] == "StableDiffusionXLPipeline" and index["force_zeros_for_empty_prompt"] is True
    )
    assert "feature_extractor" not in index and "image_encoder" not in index
    unet = read_json(base / "unet" / "config.json")
    assert unet["down_block_types"] == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert unet["addition_embed_type"] == "text_time" and unet["use_linear_projection"] is True
    assert unet["layers_per_block"] == 2 and unet["time_cond_proj_dim"] is None
    vae = read_json(base / "vae" / "config.json")
    assert vae["down_block_types"] == ["DownEncoderBlock2D"] * 4 and vae["latent_channels"] == 4
    te1 = read_json(base / "text_encoder" / "config.json")
    te2 = read_json(base / "text_encoder_2" / "config.json")
    assert te1["hidden_size"] != te2["hidden_size"]
    assert isinstance(te2["num_hidden_layers"], int) and te2["num_hidden_layers"] >= 10
    assert "torch_dtype" in te1 and "dtype" not in te1
    assert unet["cross_attention_dim"] == te1["hidden_size"] + te2["hidden_size"]  # type: ignore[operator]
    for folder in ("unet", "vae", "text_encoder", "text_encoder_2"):
        files = sorted(p.name for p in (base / folder).glob("*.safetensors"))
        assert files and all(".fp16." in name for name in files), files
        tensors, metadata = header(next((base / folder).glob("*.safetensors")))
        assert metadata == {"format": "pt"}
        assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
        if folder.startswith("text_encoder"):
            assert all(k.startswith(("text_model.", "text_projection.")) for k in tensors), folder
    merges = (base / "tokenizer" / "merges.txt").read_text(encoding="utf-8")
    assert merges.startswith("#version: 0.2\n")


def test_tokenizers_make_one_token_per_word(pocket_engine: Engine) -> None:
    for tokenizer, pad in (
        (pocket_engine.base.tokenizer, "<|endoftext|>"),
        (pocket_engine.base.tokenizer_2, "!"),
    ):
        ids = tokenizer(PROMPT, padding="max_length", max_length=tokenizer.model_max_length).input_ids
        tokens = tokenizer.convert_ids_to_tokens(ids)
        words = ["a", "large", "red", "circle", "on", "a", "blue", "background", ",", "top", "left"]
        assert tokens[: len(words) + 2] == ["<|startoftext|>", *(w + "</w>" for w in words), "<|endoftext|>"]
        assert tokens[-1] == pad
        assert max(ids[: len(words) + 2]) == ids[len(words) + 1]  # EOS has the highest id: pooling finds it
        for word in WORDS:
            assert len(tokenizer(word).input_ids) == 3, word


def test_distilled_files_are_in_the_real_layouts() -> None:
    lcm = read_json(POCKET / LCM_DIR / "config.json")
    assert lcm["_class_name"] == "UNet2DConditionModel" and isinstance(lcm["time_cond_proj_dim"], int)
    tensors, _ = header(POCKET / LCM_DIR / "diffusion_pytorch_model.fp16.safetensors")
    assert "time_embedding.cond_proj.weight" in tensors
    base_keys = set(header(POCKET / BASE_DIR / "unet" / "diffusion_pytorch_model.fp16.safetensors")[0])
    for steps in (4, 2):
        unet, metadata = header(POCKET / lightning_unet_file(steps))
        assert set(unet) == base_keys and not metadata
        assert all(t.dtype == torch.float16 for t in unet.values())
    for path, expected_metadata in (
        (POCKET / LCM_LORA_FILE, {"format": "pt"}),
        (POCKET / lightning_lora_file(4), None),
        (POCKET / lightning_lora_file(2), None),
        (POCKET / TCD_LORA_FILE, {"format": "pt"}),  # h1t/TCD-SDXL-LoRA: diffusers' save_lora_weights
        (POCKET / PCM_LORA_FILE, None),  # wangfuyun/PCM_Weights' "_converted" files carry none
    ):
        lora, metadata = header(path)
        assert (metadata or None) == expected_metadata, path
        assert all(k.startswith("lora_unet_") for k in lora)
        alphas = [k for k in lora if k.endswith(".alpha")]
        assert alphas and all(lora[k].dim() == 0 and lora[k].dtype == torch.float16 for k in alphas)
        downs = {k.removesuffix(".lora_down.weight") for k in lora if k.endswith(".lora_down.weight")}
        assert downs == {k.removesuffix(".alpha") for k in alphas}


@pytest.mark.parametrize(
    ("file", "writer"), [(TCD_LORA_FILE, "write_tcd_lora"), (PCM_LORA_FILE, "write_pcm_lora")]
)
def test_field_loras_have_the_layout_the_field_fixtures_pin(
    file: str, writer: str, tiny_models: TinyModelSet, tmp_path: Path
) -> None:
    """The TCD and PCM files hold what devtools.field_fixtures writes for the real files (which
    docs/field-layouts.md checked against the published sizes): the same kohya keys over the same
    module kinds, fp16 with 0-d alphas, the same metadata, and shapes that differ only in the rank
    (8 here, 64 there) and the tiny model's widths; the modules are the pocket LCM-LoRA's."""
    from devtools import field_fixtures

    models = tiny_models
    if writer == "write_tcd_lora":
        real, _ = field_fixtures.write_tcd_lora(models, tmp_path)
    else:
        real, _ = field_fixtures.write_pcm_lora(models, tmp_path, PCM_LORA_FILE)
    assert real.name == Path(file).name
    ours, ours_meta = header(POCKET / file)
    theirs, theirs_meta = header(real)
    assert ours_meta == theirs_meta

    def kinds(keys: object) -> set[str]:  # the key's shape without block indices: module kind + suffix
        return {"".join(c for c in k if not c.isdigit()) for k in keys}  # type: ignore[attr-defined]

    assert kinds(ours) <= kinds(theirs) and kinds(ours) == kinds(header(POCKET / LCM_LORA_FILE)[0])
    assert set(ours) == set(header(POCKET / LCM_LORA_FILE)[0])
    assert {t.dtype for t in ours.values()} == {t.dtype for t in theirs.values()} == {torch.float16}
    for key, tensor in ours.items():
        if key.endswith(".alpha"):
            assert tensor.dim() == 0
        elif key.endswith(".lora_down.weight"):
            assert tensor.shape[0] == 8
        else:
            assert tensor.shape[1] == 8


def test_every_mode_runs_two_steps(pocket_engine: Engine) -> None:
    modes = pocket_engine.available_modes()
    # The five and every mode of the base alone; the rest of the field needs files it does not ship.
    assert set(modes) >= {
        *DEFAULT_COMPARISON,
        *(name for name, spec in MODES.items() if spec.role is None),
        "tcd",
        "pcm-lora",
    }
    assert all(MODES[m].role is None or MODES[m].role in pocket_engine.files for m in modes)
    request = GenerationRequest(
        prompt=PROMPT, seeds=(7,), modes=tuple(ModeSettings(mode=m, steps=2) for m in modes)
    )
    results = pocket_engine.run(request).results
    assert [r.mode for r in results] == list(modes)
    for result in results:
        assert result.image.shape == (64, 64, 3)
        assert result.steps == 2
        assert 5 < float(result.image.std()) < 120, result.mode  # a picture, not a flat or broken one


@pytest.mark.parametrize("mode", ["lcm-lora", "lightning-lora", "tcd", "pcm-lora"])
def test_lora_modes_equal_plain_diffusers_and_differ_from_the_base(pocket_engine: Engine, mode: str) -> None:
    """The card's recipe in plain diffusers gives the engine's picture bit for bit (the same fp16
    folders upcast by the same from_pretrained, the same LoRA file); without the LoRA it differs.
    TCD: TCDScheduler, 4 steps, guidance 0, eta 0.3; PCM: DDIM trailing, 4 steps (the file's), guidance 0."""
    from diffusers import (
        DDIMScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
        StableDiffusionXLPipeline,
        TCDScheduler,
    )

    resolved = pocket_engine.resolve(ModeSettings(mode=mode))
    request = GenerationRequest(prompt=PROMPT, seeds=(3,), modes=(ModeSettings(mode=mode),))
    engine_image = pocket_engine.run(request).results[0].image
    pipe = StableDiffusionXLPipeline.from_pretrained(
        POCKET / BASE_DIR, dtype=torch.float32, variant="fp16", local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    extra: dict[str, float] = {}
    if mode == "lcm-lora":
        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        lora = POCKET / LCM_LORA_FILE
    elif mode == "tcd":
        pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
        lora = POCKET / TCD_LORA_FILE
        extra = {"eta": 0.3}
        assert (resolved.steps, resolved.guidance) == (4, 0.0)
    elif mode == "pcm-lora":
        pipe.scheduler = DDIMScheduler.from_config(
            pipe.scheduler.config, timestep_spacing="trailing", clip_sample=False, set_alpha_to_one=False
        )
        lora = POCKET / PCM_LORA_FILE
        assert (resolved.steps, resolved.guidance) == (4, 0.0)
    else:
        pipe.scheduler = EulerDiscreteScheduler.from_config(
            pipe.scheduler.config, timestep_spacing="trailing"
        )
        lora = pocket_engine.files[MODES[mode].adapter].path  # type: ignore[index]

    def plain() -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(3)
        out = pipe(
            PROMPT,
            num_inference_steps=resolved.steps,
            guidance_scale=resolved.guidance,
            generator=generator,
            **extra,
        )
        return np.asarray(out.images[0])

    without = plain()
    pipe.load_lora_weights(str(lora))
    if pocket_engine.placer.fused:  # like with like: the engine runs the card's fused route here
        pipe.fuse_lora()
    with_lora = plain()
    np.testing.assert_array_equal(with_lora, engine_image)
    assert np.abs(with_lora.astype(int) - without.astype(int)).mean() > 0.5


def test_lcm_guidance_reaches_the_unet_as_an_embedding() -> None:
    """The LCM UNet takes guidance as an embedding (no CFG pass): w changes what it draws.

    Only a little on this model: its teacher's own pictures at CFG 3 and CFG 8 differ by about
    2 grey levels on average (docs/pocket.md), so the exact figure is not asserted, only that the
    trained projection is there and the engine feeds it."""
    engine = Engine(pocket_paths(4))
    unet = engine.pipes[ModelRole.LCM_UNET].unet
    assert unet.config.time_cond_proj_dim == 32
    assert float(unet.time_embedding.cond_proj.weight.detach().norm()) > 0.1  # zero-initialised, then trained

    def pictures(guidance: float) -> np.ndarray:
        settings = ModeSettings(mode="lcm", steps=4, guidance=guidance)
        request = GenerationRequest(prompt=PROMPT, seeds=(0, 1, 2, 3), modes=(settings,))
        return np.stack([r.image.astype(np.int16) for r in engine.run(request).results])

    low, high = pictures(3.0), pictures(8.0)
    assert np.array_equal(high, pictures(8.0))  # the same w draws the same pictures
    assert np.abs(low - high).mean() > 0.02


def test_validation_scores_the_student_as_the_shipped_files_score() -> None:
    """train.validate rebuilds the base folder from checkpoint-shaped weights and scores a student
    with the mode's scheduler: the shipped LCM UNet through it scores as through the shipped files."""
    from safetensors.torch import load_file

    from devtools.pocket.evaluate import evaluate, load_pipeline, scheduler
    from devtools.pocket.spec import build_unet
    from devtools.pocket.train.validate import VALIDATION_IMAGE_SEED, Validator

    base = POCKET / BASE_DIR
    te1 = load_file(base / "text_encoder" / "model.fp16.safetensors")
    ema = {
        **{
            f"unet.{k}": v.float()
            for k, v in load_file(base / "unet" / "diffusion_pytorch_model.fp16.safetensors").items()
        },
        **{f"te1.{k.removeprefix('text_model.')}": v.float() for k, v in te1.items()},
        **{
            f"te2.{k}": v.float()
            for k, v in load_file(base / "text_encoder_2" / "model.fp16.safetensors").items()
        },
    }
    scaling = read_json(base / "vae" / "config.json")["scaling_factor"]
    vae = {
        k: v.float() for k, v in load_file(base / "vae" / "diffusion_pytorch_model.fp16.safetensors").items()
    }
    validator = Validator({"ema": ema, "scaling_factor": scaling}, vae, mode="lcm", prompts=12)

    shipped = load_pipeline(base)
    shipped.scheduler = scheduler(shipped, "LCMScheduler")
    lcm = build_unet(time_cond_proj_dim=32)
    lcm.load_state_dict(load_file(POCKET / LCM_DIR / "diffusion_pytorch_model.fp16.safetensors"))
    shipped.unet = lcm
    expected, _, _ = evaluate(shipped, validator.prompts, steps=4, guidance=5.0, seed=VALIDATION_IMAGE_SEED)
    assert validator(lcm) == expected.all
    assert expected.all > 0.3
    assert validator(build_unet(time_cond_proj_dim=32)) < 0.1  # an untrained UNet draws nothing right
