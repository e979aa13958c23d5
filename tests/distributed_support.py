"""Start and end the gloo process groups of the multi-process tests: one implementation for every worker.

Used by the `mp.spawn` workers (tests/test_contrastive_distributed.py), the script the FSDP2 test writes and runs
(tests/test_vision_quality.py) and the torchrun workers (tests/test_trainer_video_text.py, where the Trainer starts
the group and `shut_down_process_group` ends it). Spawned scripts import it with `tests/` on their `sys.path`.

Why a barrier before `destroy_process_group()`: ranks reach the end of a worker at different times (rank 0 writes
the results, the others do not). With gloo, a rank that tears down its process group while a peer still holds the
connection of its last collective aborts that peer from a background thread ("terminate called without an active
exception", SIGABRT): about 1 run in 5 on torch 2.14.1 and 1 in 2 on torch 2.11 for the FSDP2 test. A barrier makes
every rank finish all communication before any rank closes its connections.

Why the workers then leave with `os._exit(0)` (`exit_worker`): the barrier did not remove every abort. On torch 2.11
the FSDP2 test still died with the same SIGABRT in 1 of 2 fast-suite runs under load, after the barrier. The abort
comes from C++ threads of the torch.distributed runtime that are still joinable when the interpreter's normal exit
runs the static destructors. A worker has written its results and closed its files by then, so it skips that
teardown and exits with status 0. The launcher sees a normal exit, and a worker that raised still reports its error
as before.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
from collections.abc import Iterator

import torch.distributed as dist


# a rank that dies leaves its peers waiting in a collective: fail within minutes, not after gloo's 30-minute default
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=3)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for `init_method` / `--master_port`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shut_down_process_group() -> None:
    """Wait for every rank, then destroy the default process group (a no-op when none is initialized)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def gloo_process_group(rank: int, world_size: int, port: int) -> Iterator[None]:
    """A CPU (gloo) process group over 127.0.0.1:`port` for the body of the `with`, ended with a barrier."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=PROCESS_GROUP_TIMEOUT
    )
    try:
        yield
    except BaseException:
        # no barrier on failure: the peers would wait for this rank until the timeout; the launcher (mp.spawn with
        # join=True, torchrun) ends them and reports this rank's error
        dist.destroy_process_group()
        raise
    shut_down_process_group()


def exit_worker() -> None:
    """End a worker process that has shut its process group down: flush the standard streams, then exit with status 0
    without running the interpreter's teardown (see the module docstring). Call it last, after the results are
    written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
