"""Keep freed score-sized buffers in the process instead of handing them back to the kernel.

A training step allocates and frees tensors of ``[B, |E|]`` and ``[B, d]`` floats (about 0.1–1.2 MB
at the paper's sizes).  glibc serves blocks above its mmap threshold (128 KiB, raised dynamically
only after the first frees) with a fresh ``mmap`` and returns them with ``munmap``, so every step
pays page faults and zero-filling for each of them again.  Raising the mmap and trim thresholds makes glibc reuse the freed memory across
steps (buffers reused, not re-faulted).

**On by default** (``KDKGE_MALLOC_TUNE=0`` turns it off), since the process's own counters show
what it saves: on the 2-core AMD EPYC machine, a UMLS 1vsAll DistMult epoch (d = 289) took 5,000–6,400
minor page faults and 14–22 ms of system CPU time without it, 19–88 faults and 0–1.4 ms with it
(``getrusage`` around 10 epochs, fresh processes alternating; ``make bench`` prints the same figures).
Wall-clock ratios on the shared machine were noisier (1.10× and 0.97× on an Intel Xeon, 0.98–1.27×
here); the faults and the kernel time they cost are not.

Nothing numerical changes: the same kernels run on the same values, only the memory's origin
differs (``tests/test_bench_floor.py`` checks bit-identical results).  The cost is that freed
memory stays in the process (its peak, never more) until exit.  No effect off glibc (macOS,
musl) or on GPU memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's largest allowed mmap threshold on 64-bit (HEAP_MAX_SIZE / 2): blocks up to 32 MiB come from the heap.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1 << 30

_done: bool | None = None


def tune(enabled: bool | None = None) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they are set.

    ``enabled=None``: on unless the environment variable ``KDKGE_MALLOC_TUNE`` is ``0``."""
    global _done
    if enabled is None:
        enabled = os.environ.get("KDKGE_MALLOC_TUNE", "1") != "0"
    if not enabled:
        return False
    if _done is not None:
        return _done
    _done = False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
