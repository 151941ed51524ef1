"""A local Ray for the bench's Ray tests: no dashboard, no token under ~/.ray, shut down afterwards."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
from collections.abc import Iterator

import pytest
from _pytest.faulthandler import fault_handler_stderr_fd_key


@contextlib.contextmanager
def local_ray(config: pytest.Config, *, cpus: int, gpus: int = 0) -> Iterator[None]:
    """ray.init on this machine; gpus are logical where there is none (Ray places and numbers them all
    the same). RAY_AUTH_MODE is set only while it runs, so that no other test sees it. Afterwards
    pytest's fault handler is put back (faulthandler_back)."""
    import ray

    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(
        num_cpus=cpus,
        num_gpus=gpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        faulthandler_back(config)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def faulthandler_back(config: pytest.Config) -> None:
    """ray.init starts Ray's core worker in this process, and it installs its own handler for SIGSEGV,
    which writes to Ray's session logs: a crash in any later test then printed nothing at all (CI's
    log of one ended at "pytest failed (exit -11)"). pytest's handler, writing to its copy of the
    real stderr, is installed again (enable() alone does nothing while faulthandler counts as on)."""
    fd = config.stash.get(fault_handler_stderr_fd_key, None)
    if fd is None:  # pytest -p no:faulthandler
        return
    faulthandler.disable()
    faulthandler.enable(file=fd)
