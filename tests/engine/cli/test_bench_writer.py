"""The bench's writer thread (engine.cli.bench_writer): cells saved in the order handed over, at most one
finished cell unsaved at any moment, the cell handed over saved even when the engine's side stops, and a
failed save raised on the engine's thread."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from engine.cli.bench_work import CellDone
from engine.cli.bench_writer import CellWriter


def _done(number: int) -> CellDone:
    return cast(CellDone, number)  # the writer only passes what it is given to save() and measure()


def test_the_next_cell_is_taken_only_once_the_one_before_is_saved() -> None:
    saved: list[Any] = []
    measured: list[Any] = []
    release = threading.Event()

    def save(done: CellDone) -> None:
        if cast(int, done) == 1:
            assert release.wait(10)
        saved.append(done)

    writer = CellWriter(save, measured.append)
    writer.hand_over(_done(1))  # taken at once: nothing was waiting
    second = threading.Thread(target=writer.hand_over, args=(_done(2),))
    second.start()
    second.join(0.3)
    assert second.is_alive() and saved == []  # cell 1 unsaved: cell 2 is not taken, the engine waits
    release.set()
    second.join(10)
    assert not second.is_alive()
    for number in (3, 4):
        writer.hand_over(_done(number))
    writer.close()
    assert saved == [1, 2, 3, 4] and measured == [1, 2, 3, 4]


def test_the_cell_handed_over_is_saved_when_the_engine_s_side_stops() -> None:
    saved: list[Any] = []
    writer = CellWriter(saved.append)

    def cells() -> Any:
        yield _done(1)
        yield _done(2)
        raise KeyboardInterrupt  # Ctrl-C while the third cell is made

    with pytest.raises(KeyboardInterrupt):
        try:
            for done in cells():
                writer.hand_over(done)
        finally:
            writer.close()
    assert saved == [1, 2]


def test_a_failed_save_stops_the_writer_and_is_raised_on_the_engine_s_thread() -> None:
    saved: list[Any] = []

    def save(done: CellDone) -> None:
        if cast(int, done) == 2:
            raise OSError("No space left on device")
        saved.append(done)

    writer = CellWriter(save)
    writer.hand_over(_done(1))
    writer.hand_over(_done(2))
    with pytest.raises(OSError, match="No space left"):
        writer.hand_over(_done(3))
    writer.close()  # raised once, not again
    assert saved == [1]
