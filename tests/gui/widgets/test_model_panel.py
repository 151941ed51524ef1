"""The models panel: a folder and a Hugging Face cache scanned off the GUI thread, each entry said for
what it is, one action to use it, and a clear message (never a crash) for what cannot be used."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTreeWidgetItem
from pytestqt.qtbot import QtBot
from safetensors.numpy import save_file

from devtools.tiny_model import TinyModelSet
from engine.contract.modes import MODES, ModeFile, ModelRole
from gui.state.jobs import EngineConfig, EventKind
from gui.state.model_scan import ModelEntry, ScanResult
from gui.state.model_setup import Use
from gui.state.settings import Settings, load_settings
from gui.state.worker import EngineFactory, LoadedEngine
from gui.widgets.main_window import MainWindow
from gui.widgets.model_panel import ModelPanel
from tests.gui.conftest import (
    ENGINE_READY_MS,
    WindowMaker,
    anything,
    kind_is,
    two_step_modes,
    wait_event,
    write_vae_file,
)

SCAN_MS = 30_000
WAIT_MS = 5_000  # a file's check, answered from the model controller's pool thread
LIGHTNING_LORA = "sdxl_lightning_4step_lora.safetensors"


def write_sd15_checkpoint(path: Path) -> Path:
    """The keys that make a Stable Diffusion 1.x single file (docs/model-files.md), with tiny tensors."""
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": np.zeros((8, 4, 3, 3), np.float16),
            "cond_stage_model.transformer.text_model.final_layer_norm.weight": np.zeros(8, np.float16),
        },
        str(path),
    )
    return path


@pytest.fixture
def models_dir(tiny_models: TinyModelSet, tmp_path: Path) -> Path:
    """The tiny set as an artist's downloads folder, with a pickle, an SD 1.5 file and a truncated one."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "sdxl-base").symlink_to(tiny_models.base, target_is_directory=True)
    (folder / "lcm-sdxl").symlink_to(tiny_models.lcm_unet, target_is_directory=True)
    (folder / LIGHTNING_LORA).symlink_to(tiny_models.lightning_lora)
    # Any SDXL LoRA not named for LCM or Lightning is a style LoRA.
    shutil.copy(tiny_models.lightning_lora, folder / "watercolor_style.safetensors")
    (folder / "old_model.ckpt").write_bytes(b"\x80\x04\x95 pickled")
    write_sd15_checkpoint(folder / "v1-5-pruned.safetensors")
    (folder / "half_downloaded.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    write_vae_file(folder / "sdxl_vae.safetensors")
    return folder


def add_to_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """huggingface_hub's layout: blobs, a snapshot of relative links, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    for name, source in files.items():
        data = source.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tiny_models: TinyModelSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    add_to_hub_cache(
        cache, "latent-consistency/lcm-lora-sdxl", {"pytorch_lora_weights.safetensors": tiny_models.lcm_lora}
    )
    add_to_hub_cache(cache, "ByteDance/SDXL-Lightning", {LIGHTNING_LORA: tiny_models.lightning_lora})
    notes = tmp_path / "README.md"
    notes.write_text("a text model")
    add_to_hub_cache(cache, "someone/a-text-model", {"README.md": notes})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def scan(panel: ModelPanel, qtbot: QtBot, folder: Path) -> ScanResult:
    with qtbot.waitSignal(panel.scanned, timeout=SCAN_MS) as done:
        panel.scan(folder)
        assert panel.is_scanning()  # scan() returned at once: the work is on the pool thread
    result = done.args[0]
    assert isinstance(result, ScanResult)
    return result


def entry(panel: ModelPanel, name: str) -> tuple[QTreeWidgetItem, ModelEntry]:
    item = panel.item_named(name)
    assert item is not None, [e.name for e in panel.entries()]
    found = item.data(0, Qt.ItemDataRole.UserRole)
    assert isinstance(found, ModelEntry)
    return item, found


def test_scan_says_what_each_file_is_and_why_some_are_refused(
    qtbot: QtBot, models_dir: Path, hub_cache: Path
) -> None:
    panel = ModelPanel()
    qtbot.addWidget(panel)
    result = scan(panel, qtbot, models_dir)
    assert result.folder_problem is None and result.hub_problem is None
    texts = {e.name: panel.item_named(e.name).text(0) for e in panel.entries()}  # type: ignore[union-attr]
    assert "SDXL base (diffusers folder)" in texts["sdxl-base"]
    assert "enables DDIM" in texts["sdxl-base"]
    assert "LCM UNet" in texts["lcm-sdxl"]
    assert "4-step SDXL-Lightning LoRA" in texts[LIGHTNING_LORA]
    assert "style LoRA" in texts["watercolor_style.safetensors"]
    assert "VAE (single file)" in texts["sdxl_vae.safetensors"]
    assert "pickle" in texts["old_model.ckpt"] and "✗" in texts["old_model.ckpt"]
    assert "Stable Diffusion 1.x" in texts["v1-5-pruned.safetensors"]
    assert "truncated" in texts["half_downloaded.safetensors"]
    uses = {e.name: e.natural_use for e in panel.entries()}
    assert uses["sdxl-base"] == Use.BASE and uses["watercolor_style.safetensors"] == Use.STYLE
    assert uses["old_model.ckpt"] is None and uses["v1-5-pruned.safetensors"] is None
    # The Hugging Face cache, named by repository id; a repository of other files is left out.
    _, lcm = entry(panel, "latent-consistency/lcm-lora-sdxl")
    assert lcm.info is not None and "LCM-LoRA" in lcm.what()
    assert lcm.reference == Path("latent-consistency/lcm-lora-sdxl")
    _, lightning = entry(panel, f"ByteDance/SDXL-Lightning/{LIGHTNING_LORA}")
    assert lightning.natural_use == Use.LIGHTNING_LORA
    assert result.hub_skipped == 1


def test_a_missing_folder_is_created_and_a_file_is_refused(qtbot: QtBot, tmp_path: Path) -> None:
    panel = ModelPanel()
    qtbot.addWidget(panel)
    result = scan(panel, qtbot, tmp_path / "new" / "models")
    assert result.folder_problem is None and result.entries == ()
    assert (tmp_path / "new" / "models").is_dir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = scan(panel, qtbot, a_file)
    assert result.folder_problem is not None
    assert "✗" in panel.tree.topLevelItem(0).child(0).text(0)  # type: ignore[union-attr]


class CountingFactory:
    """The session's engine, counting loads: which configurations the worker asked for."""

    def __init__(self, inner: EngineFactory) -> None:
        self.inner = inner
        self.configs: list[EngineConfig] = []

    def __call__(self, config: EngineConfig, say: Callable[[str], None]) -> LoadedEngine:
        self.configs.append(config)
        return self.inner(config, say)


def scanned_window(
    make_window: WindowMaker, qtbot: QtBot, settings: Settings, factory: EngineFactory
) -> MainWindow:
    window = make_window(settings=settings, factory=factory, start=False)
    with qtbot.waitSignals(
        [window.worker.reported, window.model_panel.scanned],
        check_params_cbs=[kind_is(EventKind.ENGINE_READY), anything],
        timeout=ENGINE_READY_MS,
    ):
        window.start()
    return window


def test_double_click_and_menu_assign_files_and_reload_the_engine(
    make_window: WindowMaker,
    qtbot: QtBot,
    models_dir: Path,
    output_dir: Path,
    shared_engine_factory: EngineFactory,
) -> None:
    factory = CountingFactory(shared_engine_factory)
    window = scanned_window(
        make_window, qtbot, Settings(models_dir=models_dir, output_dir=output_dir), factory
    )
    panel = window.model_panel
    assert len(factory.configs) == 1 and factory.configs[0].paths is None  # the built-in model
    assert "weights" in window.memory_label.text() and "residency" in window.memory_label.text()
    assert not panel.memory.isHidden() and "base unet" in panel.memory.text()

    # A double-click on the base: the base it becomes, saved, and the engine reloads with it.
    window.side_tabs.setCurrentWidget(panel)
    item, _ = entry(panel, "sdxl-base")
    panel.tree.scrollToItem(item)
    qtbot.waitUntil(lambda: panel.tree.visualItemRect(item).height() > 0)
    center = panel.tree.visualItemRect(item).center()
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        # Qt 6's mouseDClick alone skips the press that selects the item, as a real double-click has.
        QTest.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=center)
        QTest.mouseDClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=center)
    base = models_dir / "sdxl-base"
    assert window.settings.model_paths == {ModelRole.BASE: base}
    assert load_settings().settings.model_paths == {ModelRole.BASE: base}
    assert len(factory.configs) == 2 and factory.configs[1].paths is not None
    assert factory.configs[1].paths.base == base
    assert "✓ in use: SDXL base" in item.text(0)
    assert not window.model_note.isVisible()

    # The context menu offers every use a LoRA has (each LoRA role of the loaded modes, and the style);
    # the natural one is first in bold.
    item, _ = entry(panel, LIGHTNING_LORA)
    menu = panel.menu_for(item)
    assert menu is not None
    actions = {action.text(): action for action in menu.actions()}
    lora_roles = [s.role for s in MODES.values() if s.file is ModeFile.LORA and s.role]
    assert set(actions) == {Use(role).action for role in lora_roles} | {Use.STYLE.action}
    assert menu.actions()[0].text() == "Use as Lightning LoRA" and "Use as TCD LoRA" in actions
    assert actions["Use as Lightning LoRA"].font().bold()
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        actions["Use as Lightning LoRA"].trigger()
    assert window.settings.model_paths[ModelRole.LIGHTNING_LORA] == models_dir / LIGHTNING_LORA
    assert window.mode_panel.rows["lightning-lora"].available

    item, _ = entry(panel, "sdxl_vae.safetensors")
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        panel.activate(item)
    assert window.settings.vae == models_dir / "sdxl_vae.safetensors"
    assert factory.configs[-1].paths is not None and factory.configs[-1].paths.vae == window.settings.vae

    item, _ = entry(panel, "watercolor_style.safetensors")
    with wait_event(qtbot, window.worker, EventKind.ENGINE_READY, timeout=ENGINE_READY_MS):
        panel.activate(item)
    assert [s.path for s in window.settings.styles] == [models_dir / "watercolor_style.safetensors"]
    assert len(window.style_panel.rows) == 1 and window.style_panel.rows[0].check.isChecked()
    assert len(factory.configs) == 5
    with qtbot.waitSignal(window.models.assigned, timeout=WAIT_MS) as answered:
        panel.activate(item)  # twice: said, and nothing reloads
    assert answered.args == [False] and "already in the style list" in window.banner.text()
    assert len(window.settings.styles) == 1


def test_files_that_do_not_fit_give_a_message_and_the_window_stays_usable(
    make_window: WindowMaker,
    qtbot: QtBot,
    models_dir: Path,
    gui_settings: Settings,
    shared_engine_factory: EngineFactory,
) -> None:
    factory = CountingFactory(shared_engine_factory)
    settings = Settings(
        model_paths=gui_settings.model_paths, output_dir=gui_settings.output_dir, models_dir=models_dir
    )
    window = scanned_window(make_window, qtbot, settings, factory)
    panel = window.model_panel
    before = window.settings

    item, _ = entry(panel, "v1-5-pruned.safetensors")
    menu = panel.menu_for(item)
    assert menu is not None
    with qtbot.waitSignal(window.models.assigned, timeout=WAIT_MS) as answered:
        next(a for a in menu.actions() if a.text() == "Use as SDXL base").trigger()
    assert answered.args == [False] and window.banner.isVisible()
    assert "not used as SDXL base" in window.banner.text()
    assert "Stable Diffusion 1.x" in window.banner.text()
    panel.activate(item)
    assert "cannot be used" in window.banner.text() and "Stable Diffusion 1.x" in window.banner.text()
    panel.activate(entry(panel, "old_model.ckpt")[0])
    assert "pickle" in window.banner.text()
    for use, name, said in (
        (Use.LCM_UNET, "half_downloaded.safetensors", "truncated"),
        (Use.STYLE, "sdxl-base", "not an SDXL LoRA"),
        (Use.VAE, "does-not-exist", "does not exist"),
    ):
        with qtbot.waitSignal(window.models.assigned, timeout=WAIT_MS) as answered:
            window.assign_model(use, models_dir / name)
        assert answered.args == [False] and said in window.banner.text()

    assert window.settings == before and len(factory.configs) == 1  # nothing changed, nothing reloaded
    two_step_modes(window, ("lcm",))
    with wait_event(qtbot, window.worker, EventKind.FINISHED):
        assert window.generate() is not None
    assert window.grid.tiles[0].result is not None


def test_rescan_finds_new_files_and_the_folder_can_change(
    make_window: WindowMaker, qtbot: QtBot, models_dir: Path, tmp_path: Path, tiny_models: TinyModelSet
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    window = make_window(settings=Settings(models_dir=other), wait_ready=False, start=False)
    with qtbot.waitSignal(window.model_panel.scanned, timeout=SCAN_MS):
        window.start()
    assert window.model_panel.entries() == []
    shutil.copy(tiny_models.lcm_lora, other / "lcm-lora-sdxl.safetensors")
    with qtbot.waitSignal(window.model_panel.scanned, timeout=SCAN_MS):
        window.model_panel.rescan_button.click()
    assert [e.name for e in window.model_panel.entries()] == ["lcm-lora-sdxl.safetensors"]
    with qtbot.waitSignal(window.model_panel.scanned, timeout=SCAN_MS):
        window.model_panel.folder_chosen.emit(models_dir)
    assert window.settings.models_dir == models_dir and load_settings().settings.models_dir == models_dir
    assert len(window.model_panel.entries()) == 8


def test_usable_files_come_first_and_the_plan_fits_the_default_window(
    make_window: WindowMaker,
    qtbot: QtBot,
    models_dir: Path,
    output_dir: Path,
    shared_engine_factory: EngineFactory,
) -> None:
    """A folder with refused files (a pickle, an SD 1.5 file, a truncated one): the usable files are at
    the top, the refused ones after; the plan under the tree needs no horizontal scroll."""
    settings = Settings(models_dir=models_dir, output_dir=output_dir, vram=8.0)
    window = scanned_window(make_window, qtbot, settings, shared_engine_factory)
    panel = window.model_panel
    window.side_tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "Plan for 8.00 GiB" in panel.plan.toPlainText(), timeout=SCAN_MS)
    qtbot.waitUntil(lambda: panel.plan.viewport().width() > 0)
    if shot := os.environ.get("FEWSTEP_SHOT"):  # to look at it: FEWSTEP_SHOT=models.png pytest -k fits
        window.grab().save(shot)
    usable = [e.usable for e in panel.entries() if e.reference.is_relative_to(models_dir)]
    assert usable == sorted(usable, reverse=True) and usable.count(False) == 3, usable
    # The row names the file: its reason does not repeat the path, which the narrow panel would wrap.
    truncated = entry(panel, "half_downloaded.safetensors")[0].text(0)
    assert "refused: it is not a readable safetensors file" in truncated and str(models_dir) not in truncated
    assert window.width() == 1480  # the window's default width
    scroll = panel.plan.horizontalScrollBar()
    assert scroll.maximum() == 0, f"the plan scrolls {scroll.maximum()} px sideways"
