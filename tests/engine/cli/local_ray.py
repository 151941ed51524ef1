"""A local Ray for the bench's Ray tests: no dashboard, no token under ~/.ray, shut down afterwards."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator


@contextlib.contextmanager
def local_ray(*, cpus: int, gpus: int = 0) -> Iterator[None]:
    """ray.init on this machine; gpus are logical where there is none (Ray places and numbers them all
    the same). RAY_AUTH_MODE is set only while it runs, so that no other test sees it."""
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
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
