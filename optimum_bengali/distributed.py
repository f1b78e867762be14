"""Runs with many processes (``torchrun``, ``accelerate launch``): who is main, sharing small objects.

With one process every function here is a cheap no-op, so no code path is special to a process count.
The process group is the one accelerate (and so ``transformers.Trainer``) uses: gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os
from typing import Any, List


def world_size() -> int:
    """Processes in this run (``WORLD_SIZE`` set by torchrun / accelerate launch; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_distributed() -> bool:
    return world_size() > 1


def _state() -> Any:
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # a singleton: Trainer shares it


def setup() -> None:
    """Join the process group now (before any step), if this is a many-process run."""
    if is_distributed():
        _state()


def rank() -> int:
    return _state().process_index if is_distributed() else 0


def is_main_process() -> bool:
    """True for the one process that measures and writes (the only one, in a 1-process run)."""
    return rank() == 0


def wait_for_everyone() -> None:
    if is_distributed():
        _state().wait_for_everyone()


def broadcast(obj: Any) -> Any:
    """The main process's ``obj`` on every process (``accelerate.utils.broadcast_object_list``)."""
    if not is_distributed():
        return obj
    from accelerate.utils import broadcast_object_list

    _state()
    return broadcast_object_list([obj], from_process=0)[0]


def gather(obj: Any) -> List[Any]:
    """Every process's ``obj``, in rank order, on every process (``accelerate.utils.gather_object``, which
    concatenates the processes' lists: each sends a list of one)."""
    if not is_distributed():
        return [obj]
    from accelerate.utils import gather_object

    _state()
    return gather_object([obj])
