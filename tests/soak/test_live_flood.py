"""A live-typing flood: every edit submits a render (no debounce); the queue stays bounded, every job
finishes or is cancelled, no older prompt's picture is ever shown, and the final prompt's is."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from engine.runtime.memory import process_rss
from tests.gui.conftest import WindowMaker
from tests.gui.state.test_live_mode import live_window, settle
from tests.soak.conftest import COUNTS, report


def test_a_live_typing_flood_keeps_the_queue_bounded_and_shows_the_final_prompt(
    make_window: WindowMaker, qtbot: QtBot
) -> None:
    window, log = live_window(make_window, qtbot, 0)
    first_job = window.live.latest_job
    assert first_job is not None
    rss = process_rss()
    longest_queue = 0
    prompt = ""
    started = time.perf_counter()
    for index in range(COUNTS.edits):
        prompt = f"a red circle, edit {index}"
        window.prompt_panel.prompt.setPlainText(prompt)
        qtbot.wait(1)
        longest_queue = max(longest_queue, window.worker.waiting())
    settle(window, qtbot, prompt)
    seconds = time.perf_counter() - started
    finished = len([job for job in log.finished if job > first_job])
    cancelled = len([job for job in log.cancelled if job > first_job])
    assert longest_queue <= 1
    assert finished + cancelled == COUNTS.edits  # every job accounted for
    for tile_prompt, rendered, newest in log.shown:
        assert tile_prompt == rendered == newest  # never an older prompt's picture
    assert log.shown[-1][0] == prompt and window.grid.tiles[0].toolTip() == prompt
    grown = (process_rss() or 0) - (rss or 0)
    report(
        f"live flood: {COUNTS.edits} edits in {seconds:.1f} s; longest queue {longest_queue};"
        f" {finished} rendered, {cancelled} dropped or cancelled; final prompt shown; RSS {grown / 2**20:+.1f} MiB"
    )
