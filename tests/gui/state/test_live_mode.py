"""Live mode: rapid edits render only the newest prompt; older jobs are dropped or cancelled."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytestqt.qtbot import QtBot

from engine.contract.request import ModeResult
from gui.state.jobs import EventKind, WorkerEvent
from gui.state.live_mode import DEBOUNCE_MS
from gui.widgets.main_window import MainWindow
from tests.gui.conftest import JOB_MS, WindowMaker, wait_event

EDITS = 50


@dataclass
class LiveLog:
    shown: list[tuple[str, str, str]] = field(default_factory=list)  # (tile's prompt, rendered, newest)
    finished: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)


def live_window(make_window: WindowMaker, qtbot: QtBot, delay_ms: int) -> tuple[MainWindow, LiveLog]:
    window = make_window()
    window.prompt_panel.set_live_mode("lightning-lora")
    window.mode_panel.apply("lightning-lora", steps=2, guidance=None)
    window.live._timer.setInterval(delay_ms)
    log = LiveLog()

    def rendered(prompt: str, _result: ModeResult) -> None:
        log.shown.append((window.grid.tiles[0].toolTip(), prompt, window.live.latest_prompt))

    def ended(event: WorkerEvent) -> None:
        if event.job_id is not None and event.kind is EventKind.FINISHED:
            log.finished.append(event.job_id)
        elif event.job_id is not None and event.kind is EventKind.CANCELLED:
            log.cancelled.append(event.job_id)

    window.live.rendered.connect(rendered)
    window.worker.reported.connect(ended)
    window.prompt_panel.prompt.setPlainText("start")
    with qtbot.waitSignal(window.live.rendered, timeout=JOB_MS):
        window.prompt_panel.live.setChecked(True)
    return window, log


def type_edits(window: MainWindow, qtbot: QtBot, pause_ms: int) -> str:
    prompt = ""
    for index in range(EDITS):
        prompt = f"a red circle, edit {index}"
        window.prompt_panel.prompt.setPlainText(prompt)
        qtbot.wait(pause_ms)
    return prompt


def settle(window: MainWindow, qtbot: QtBot, last: str) -> None:
    qtbot.waitUntil(lambda: window.grid.tiles[0].toolTip() == last, timeout=JOB_MS)
    qtbot.waitUntil(lambda: not window.worker.is_busy(), timeout=JOB_MS)
    qtbot.wait(50)  # let the last queued signals arrive


def test_fifty_quick_edits_render_once_after_the_pause(make_window: WindowMaker, qtbot: QtBot) -> None:
    window, log = live_window(make_window, qtbot, DEBOUNCE_MS)
    before = window.live.submitted
    last = type_edits(window, qtbot, pause_ms=5)  # far quicker than the debounce
    settle(window, qtbot, last)
    assert window.live.submitted - before == 1
    assert log.shown[-1] == (last, last, last)
    assert len(window.grid.tiles) == 1 and window.grid.tiles[0].result is not None
    # The one finished render is saved like any image; the edits before it saved nothing.
    saved = list(window.settings.resolved_output_dir.rglob("*.png"))
    live_pngs = [p for p in saved if f"j{window.live.latest_job}-" in p.name]
    assert len(live_pngs) == 1


def test_fifty_edits_without_debounce_show_only_the_newest_prompt(
    make_window: WindowMaker, qtbot: QtBot
) -> None:
    # No debounce: every edit submits a job, so each edit must drop the queued one and cancel the
    # running one; the stress the debounce normally spares the worker.
    window, log = live_window(make_window, qtbot, 0)
    before = window.live.submitted
    first_job = window.live.latest_job
    assert first_job is not None
    last = type_edits(window, qtbot, pause_ms=2)
    settle(window, qtbot, last)
    submitted = window.live.submitted - before
    assert submitted == EDITS
    finished = len([job for job in log.finished if job > first_job])
    cancelled = len([job for job in log.cancelled if job > first_job])
    assert finished + cancelled == submitted  # every job accounted for: finished or stopped
    assert finished < EDITS // 2  # most were dropped from the queue or cancelled mid-run
    for tile_prompt, rendered, newest in log.shown:
        assert tile_prompt == rendered == newest  # never an older prompt's picture
    assert log.shown[-1][0] == last


def test_generate_turns_live_mode_off(make_window: WindowMaker, qtbot: QtBot) -> None:
    window, _log = live_window(make_window, qtbot, DEBOUNCE_MS)
    window.mode_panel.set_checked(["lcm"])
    window.mode_panel.apply("lcm", steps=2, guidance=None)
    with wait_event(qtbot, window.worker, EventKind.FINISHED):
        window.generate()
    assert not window.prompt_panel.live.isChecked() and not window.live.active
    assert [t.mode for t in window.grid.tiles] == ["lcm"]
