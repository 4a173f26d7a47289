"""The C allocator's thresholds for a process that times its work: freed memory kept for reuse.

glibc's malloc serves each block larger than its mmap threshold (128 KB at first, raised as blocks are
freed, up to 32 MB) with fresh pages from the kernel and gives freed memory at the top of the heap back to
the kernel (trim threshold). A frame's work allocates and frees many blocks of a few hundred KB to a few MB
(OpenCV's image pyramids and keypoint buffers, PyTorch's and numpy's temporaries), so, depending on what the
process allocated before, each frame may fault every page of them in afresh; on the 2-core virtual machine
these figures come from a page fault costs about 1.5 us. Measured there: OpenCV SIFT at 480x640 and 1024
keypoints took 58-63 ms per frame under the thresholds glibc chose in one process and 39-41 ms with freed
memory kept (one refinement group of 287 matches: 2,353 page faults and 3.6 ms of system time per call
against 20 and none). The first figure is not SIFT's speed but the allocator's history, so the benchmarks
keep freed memory for every method they time.

``mallopt`` is glibc's own interface for these thresholds (the ``MALLOC_MMAP_THRESHOLD_`` environment
variable takes no value above 32 MB and must be set before the process starts); other C libraries are left
as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEPT_BYTES = 256 * 1024 * 1024  # blocks up to this size come from the heap; this much free heap is kept


def keep_freed_memory(kept_bytes: int = KEPT_BYTES) -> str:
    """Make glibc's malloc serve blocks up to ``kept_bytes`` from the heap and keep up to that much freed
    memory for reuse instead of returning it to the kernel. Returns what was done, for a benchmark's header."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        get_version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return "C allocator as the platform sets it (not glibc)"
    get_version.restype = ctypes.c_char_p
    version = get_version().decode()
    if not (libc.mallopt(M_MMAP_THRESHOLD, kept_bytes) and libc.mallopt(M_TRIM_THRESHOLD, kept_bytes)):
        return f"glibc {version} malloc with its own thresholds (mallopt refused {kept_bytes} bytes)"
    return f"glibc {version} malloc keeping freed memory (mmap and trim thresholds {kept_bytes >> 20} MB)"


__all__ = ["keep_freed_memory"]
