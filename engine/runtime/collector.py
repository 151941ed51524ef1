"""Keeps Python's cyclic garbage collector from stalling other threads while models load.

A full (generation 2) collection walks every tracked object with the GIL held: after torch,
diffusers, transformers and peft are imported that is about 440,000 objects, and a full-size SDXL
set adds some 200,000 more (modules, parameters, adapter wrappers). Loading creates objects fast
enough to trigger several such collections, each of which held the GIL for 0.25 to 0.4 s (over a
second on a busy machine): the window's thread could not run, and the window froze. Two measures:

- the objects that exist before the first models load (the imported libraries, which live as long
  as the process) are frozen (`gc.freeze`), so that no later collection walks them again;
- while a load runs, full collections are put off (young generations are still collected), and the
  usual thresholds come back when it ends.

Nothing is frozen after a load: models may sit in reference cycles, and a frozen cycle would keep
their gigabytes alive after the engine that held them is dropped.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator

_lock = threading.Lock()
_models_loaded = False  # once models were built, freezing could keep their memory alive
_depth = 0
_saved: tuple[int, int, int] | None = None
_PUT_OFF = 1_000_000  # generation-1 collections before a full one: never, within a load


@contextlib.contextmanager
def collector_quiet(*, loads_models: bool = False) -> Iterator[None]:
    """Within: no full collection. Until a block that `loads_models` has begun, each block first
    freezes the objects alive (the libraries imported so far). Nests; usable as a decorator."""
    global _models_loaded, _depth, _saved
    with _lock:
        if _depth == 0 and not _models_loaded:
            gc.freeze()
        if loads_models:
            _models_loaded = True
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], _saved[1], _PUT_OFF)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


# Who runs an explicit full collection (after models are dropped). A collection frees every
# unreachable cycle, whoever made it: in a Qt process that includes Python-owned Qt objects, which
# must be deleted on the GUI thread, so the window sets a collector that runs there
# (gui.state.gui_collector). Elsewhere (the CLI, the bench) the calling thread collects.
_collector: Callable[[], None] | None = None


def set_collector(collect: Callable[[], None] | None) -> None:
    """Route collect_garbage() through this callable; None: collect on the calling thread."""
    global _collector
    _collector = collect


def collect_garbage() -> None:
    """A full collection, where this process runs its collections."""
    collect = _collector
    if collect is None:
        gc.collect()
    else:
        collect()
