"""The request form: the prompt and mode panels read as an engine request, and a past request or a PNG's
settings written back into them."""

from __future__ import annotations

from engine.contract.errors import RequestError
from engine.contract.modes import MODES
from engine.contract.request import GenerationRequest
from engine.outputs.infotext import Infotext
from gui.widgets.mode_panel import ModePanel
from gui.widgets.prompt_panel import PromptPanel

StyleWeights = tuple[tuple[str, float], ...] | None


def image_aspect(prompt: PromptPanel) -> float:
    """Height over width of the chosen size, for the grid's tiles before any image."""
    width, height = prompt.chosen_size()
    return height / width


def comparison_request(
    prompt: PromptPanel, modes: ModePanel, style_weights: StyleWeights
) -> GenerationRequest:
    """Every checked mode for every seed, validated: RequestError says what the artist must fix."""
    width, height = prompt.chosen_size()
    request = GenerationRequest(
        prompt=prompt.prompt_text(),
        negative_prompt=prompt.negative_text(),
        seeds=prompt.seeds(),
        width=width,
        height=height,
        modes=modes.chosen(),
        want_previews=True,
        style_weights=style_weights,
    )
    request.validate()
    return request


def live_request(prompt: PromptPanel, modes: ModePanel, style_weights: StyleWeights) -> GenerationRequest:
    """The live mode on one seed; LiveRenderer validates it."""
    mode = prompt.live_mode_name()
    if mode not in modes.available_modes():
        raise RequestError(f"live mode {MODES[mode].title} cannot run: its files are not configured")
    width, height = prompt.chosen_size()
    return GenerationRequest(
        prompt=prompt.prompt_text(),
        negative_prompt=prompt.negative_text(),
        seeds=(prompt.seed_value(),),
        width=width,
        height=height,
        modes=(modes.settings_for(mode),),
        style_weights=style_weights,
    )


def apply_png_settings(prompt: PromptPanel, modes: ModePanel, restored: Infotext) -> None:
    prompt.prompt.setPlainText(restored.prompt)
    prompt.negative.setPlainText(restored.negative_prompt)
    if restored.seed is not None:
        prompt.set_seed(restored.seed)
        prompt.new_seed_each_run.setChecked(False)
        prompt.seed_count.setValue(1)
    if restored.width and restored.height:
        prompt.select_size(restored.width, restored.height)
        prompt.size_chosen_by_artist = True
    if restored.mode is not None:
        modes.set_checked([restored.mode])
        modes.apply(restored.mode, steps=restored.steps, guidance=restored.guidance, eta=restored.eta)


def png_restore_note(restored: Infotext) -> str:
    """What was restored, then what was left out and why, one line each."""
    if restored.mode is None:
        head = "prompt, seed and size restored; no Fewstep mode was chosen"
    elif restored.mode_named:
        head = f"settings restored ({MODES[restored.mode].title})"
    else:
        head = f"settings restored; its sampler maps to {MODES[restored.mode].title}"
    if restored.source is not None:
        head += f" (written by {restored.source})"
    lines = [head]
    lines += [f"Left out: {item.field}: {item.reason}" for item in restored.ignored]
    return "\n".join(lines)


def apply_run_request(prompt: PromptPanel, modes: ModePanel, request: GenerationRequest) -> None:
    prompt.prompt.setPlainText(request.prompt)
    prompt.negative.setPlainText(request.negative_prompt)
    prompt.set_seed(request.seeds[0])
    prompt.new_seed_each_run.setChecked(False)
    prompt.seed_count.setValue(len(request.seeds))
    if request.width and request.height:
        prompt.select_size(request.width, request.height)
        prompt.size_chosen_by_artist = True
    modes.set_checked(m.mode for m in request.modes)
    for settings in request.modes:
        modes.apply(settings.mode, steps=settings.steps, guidance=settings.guidance, eta=settings.eta)
