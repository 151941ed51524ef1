"""Cyclic garbage collections run on the GUI thread alone while a GuiThreadCollector runs: the
automatic ones by its timer, an engine thread's explicit ones by asking the GUI thread."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

import gui.state.gui_collector as gui_collector
from engine.runtime.collector import collect_garbage
from engine.runtime.memory import release_freed_memory
from gui.state.gui_collector import GuiThreadCollector


class Collections:
    """The thread of every collection the interpreter runs, from gc's own callbacks."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self.threads.append(threading.get_ident())


@pytest.fixture
def collections() -> Iterator[Collections]:
    seen = Collections()
    gc.callbacks.append(seen)
    yield seen
    gc.callbacks.remove(seen)


def in_a_thread(work: object) -> threading.Thread:
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_the_tests_run_with_one_and_automatic_collection_is_off() -> None:
    # tests/gui/conftest.py starts one for every GUI test, as gui.app starts one for the window.
    assert not gc.isenabled()


def test_an_engine_threads_collection_runs_on_the_gui_thread(qtbot: QtBot, collections: Collections) -> None:
    gui = threading.get_ident()
    cycle = QObject()
    cycle.me = cycle  # type: ignore[attr-defined]  # garbage only a cyclic collection frees
    destroyed: list[int] = []
    cycle.destroyed.connect(lambda: destroyed.append(threading.get_ident()))
    del cycle
    worker = in_a_thread(collect_garbage)  # as the worker's _load and a dropped UNet's release call it
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=10_000)
    assert collections.threads and set(collections.threads) == {gui}
    assert destroyed == [gui]  # the Qt object was deleted on its own thread
    worker = in_a_thread(release_freed_memory)
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=10_000)
    assert set(collections.threads) == {gui}


def test_an_unanswered_ask_goes_on_without_collecting_on_its_thread(
    monkeypatch: pytest.MonkeyPatch, collections: Collections
) -> None:
    monkeypatch.setattr(gui_collector, "ASK_TIMEOUT_S", 0.2)
    worker = in_a_thread(collect_garbage)
    worker.join(5)  # the GUI thread runs no event loop meanwhile: it cannot answer
    assert not worker.is_alive() and collections.threads == []


def test_the_timer_collects_a_generation_once_its_count_passes_the_threshold(
    qapp: object, collections: Collections
) -> None:
    collector = GuiThreadCollector()
    thresholds = gc.get_threshold()
    try:
        gc.set_threshold(100_000, 10, 10)
        gc.collect()
        collections.threads.clear()
        collector.check()
        assert collections.threads == []  # nothing allocated yet: no collection
        gc.set_threshold(10, 10, 10)
        junk: list[list[int]] = [[] for _ in range(50)]  # tracked containers: generation 0's count passes 10
        collector.check()
        assert collections.threads == [threading.get_ident()]
        del junk
    finally:
        gc.set_threshold(*thresholds)


def test_stop_gives_automatic_collection_back(qapp: object) -> None:
    collector = GuiThreadCollector()
    collector.start()
    collector.stop()
    assert not gc.isenabled()  # the conftest's collector still runs: it was off when this one started
    gc.enable()
    try:
        collector.start()
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        gc.disable()
