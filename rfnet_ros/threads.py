"""CPU threads of one process: the inference engines on several, PyTorch's own operations on one.

Between the engine calls, the pipeline runs hundreds of small PyTorch operations per frame (keypoint
selection, frames, patch sampling, matching, refinement). With two or more intra-op threads, each of them
ends at an OpenMP barrier where the threads wait for one another, spinning; on a machine whose cores are
busy (other processes, the middleware's threads, the engines' own thread pool) a descheduled thread holds
up every operation. Measured on the 2-core development machine under load: 1,272 CPU-ms and 5.1 s per frame
with two threads against 134 CPU-ms and 1.0 s with one (the node's front end at 640x480, lite.yaml). The
engines (OpenVINO, ONNX Runtime) run few large operations and keep every core. ``plan_cpu_threads`` makes
that split; the node calls it at start-up, rfnet-bench with ``--torch-threads``.

Independent pieces of work made of large PyTorch operations (the refinement's groups of matches) can still
use every core: ``parallel_map`` runs them on as many Python threads as the engines have, each with its
operations on one thread. PyTorch releases the interpreter lock inside each operation, and a thread that
is descheduled delays only its own pieces (the others do not spin waiting for it).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import torch

_engine_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
Item = TypeVar("Item")


def plan_cpu_threads(engines: int | None = None, torch_ops: int = 1) -> None:
    """Engines built from now on get ``engines`` threads (default: PyTorch's thread count before this call);
    PyTorch's own operations get ``torch_ops``."""
    global _engine_threads
    _engine_threads = engines or _engine_threads or torch.get_num_threads()
    torch.set_num_threads(torch_ops)


def engine_threads() -> int:
    """Threads for an inference engine's CPU thread pool (``plan_cpu_threads``, else PyTorch's count)."""
    return _engine_threads or torch.get_num_threads()


def apply_thread_options(threads: int | None, torch_threads: int | None) -> None:
    """A benchmark's ``--threads`` (PyTorch's and OpenCV's thread counts, the engines' too) and
    ``--torch-threads`` (PyTorch's own operations, ``plan_cpu_threads``; 0 or None: as many as ``threads``)."""
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    if torch_threads:
        plan_cpu_threads(torch_ops=torch_threads)


def _in_callers_modes(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` wrapped to run in the calling thread's PyTorch grad and inference mode (thread-local
    settings a pool thread lacks)."""
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def call(*args: Any) -> Any:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return function(*args)

    return call


def parallel_map(function: Callable[[Item], Any], items: Sequence[Item]) -> list[Any]:
    """``function(item)`` for each of ``items``, on ``engine_threads()`` threads, results in order; each call
    runs in the caller's PyTorch grad and inference mode."""
    if len(items) <= 1 or engine_threads() <= 1:
        return [function(item) for item in items]
    call = _in_callers_modes(function)
    return [future.result() for future in [_thread_pool().submit(call, item) for item in items]]


def in_background(function: Callable[[], Item]) -> Future:
    """``function()`` started on ``parallel_map``'s pool, so that it goes on while the caller works (the caller
    takes its ``result()``), in the caller's PyTorch grad and inference mode; with one engine thread it runs
    now, before this returns."""
    if engine_threads() > 1:
        return _thread_pool().submit(_in_callers_modes(function))
    done: Future = Future()
    try:
        done.set_result(function())
    except Exception as error:  # raised again by result(), as from the pool
        done.set_exception(error)
    return done


def thread_blocks(length: int, fewest: int, most: int | None = None) -> list[slice]:
    """``length`` items cut into equal blocks for ``parallel_map``: a whole number per engine thread, no thread
    given fewer than ``fewest`` items (one block when there are fewer), no block over ``most`` (None: no
    limit)."""
    threads = max(1, min(engine_threads(), length // fewest))
    count = threads * math.ceil(length / (threads * most)) if most else threads
    size = max(1, math.ceil(length / count))
    return [slice(start, start + size) for start in range(0, length, size)] or [slice(0, 0)]


def _thread_pool() -> ThreadPoolExecutor:
    """The process's pool for ``parallel_map``, with ``engine_threads()`` threads (remade when that changes)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != engine_threads():
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool_size = engine_threads()
            _pool = ThreadPoolExecutor(_pool_size, thread_name_prefix="rfnet_parallel")
        return _pool
