"""Large CPU tensors on transparent huge pages.

Every large temporary of a training step (activations of 32 x 1000 x 1024
floats, 128 MiB each) comes fresh from the operating system, and touching it
the first time costs a page fault per 4 KiB page, which on the project's
2-core machine made an elementwise op into a fresh tensor take several times
as long as into an existing one. PyTorch's CPU allocator can align allocations of 2 MiB and
more and ask for huge pages (``THP_MEM_ALLOC_ENABLE=1``), which removes most
of that cost where the kernel allows huge pages on request (``madvise`` or
``always`` in ``/sys/kernel/mm/transparent_hugepage/enabled``).

PyTorch reads the variable once, at its first allocation of 2 MiB or more, so
:func:`use_huge_pages` runs when :mod:`dynmultidep` is imported, before any
such allocation. An explicit ``THP_MEM_ALLOC_ENABLE`` in the environment
(``0`` to switch it off) is left as it is.
"""

from __future__ import annotations

import os

VARIABLE = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages() -> bool:
    """Ask PyTorch for huge pages unless the environment says otherwise; whether asked."""
    return os.environ.setdefault(VARIABLE, "1") == "1"
