"""Whether numba's on-disk cache of a kernel is current, and forgetting it when not.

numba caches a ``cache=True`` kernel beside its source and loads it again while
the kernel's *own file* is unchanged; it does not look at the modules whose
helpers and constants the kernel inlines (``cpu_kernel``, ``kernel_math``,
``vectors``...). So after an edit of a helper, numba would go on loading code
compiled from the old one. Here a cache counts as current only when it is also
newer than every file of the kernel's package that its module imports,
recursively (:func:`sources`); each kernel module calls :func:`forget_stale`
when imported, so a stale cache is compiled again on first use. numba has no
public reader of its cache index: these functions read its internals, and
anything unexpected counts as not current.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
from pathlib import Path

from dynmultidep.ops.host import use_shape_cache

use_shape_cache()  # a forced kernel shape caches apart (before any kernel is decorated)


def _dispatcher(kernel: str):
    module, name = kernel.split(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def sources(module_name: str) -> frozenset[Path]:
    """The files of ``module_name`` and of every module of its top-level package
    (``dynmultidep``) it imports, recursively (read from the import statements):
    the code and constants numba compiles into a kernel of that module. This
    module, which only checks caches, is left out."""
    package = module_name.split(".")[0] + "."
    found: dict[str, Path] = {}
    pending = [module_name]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = Path(importlib.util.find_spec(name).origin)
        found[name] = path
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            else:
                continue
            pending += [m for m in imported if m.startswith(package) and m != __name__]
    return frozenset(found.values())


def _written(dispatcher) -> float | None:
    """When ``dispatcher``'s cache index was written, if it holds code for this CPU
    that numba itself considers current; else None."""
    try:
        cache_file = dispatcher._cache._cache_file
        magic = dispatcher.targetctx.codegen().magic_tuple()
        if not any(key[1] == magic for key in cache_file._load_index()):
            return None
        return os.stat(cache_file._index_path).st_mtime
    except Exception:  # no cache, or numba internals moved
        return None


def _newest_source(dispatcher) -> float:
    return max(path.stat().st_mtime for path in sources(dispatcher.py_func.__module__))


def is_current(kernel: str) -> bool:
    """Whether ``kernel`` (``module:function``) would load from the cache, and the
    code there is newer than every file it was compiled from."""
    dispatcher = _dispatcher(kernel)
    written = _written(dispatcher)
    return written is not None and written >= _newest_source(dispatcher)


def forget(kernel: str) -> None:
    """Empty ``kernel``'s cache index, so that its next call compiles it again."""
    try:
        _dispatcher(kernel)._cache.flush()
    except Exception:  # nothing to forget, or numba internals moved
        pass


def forget_stale(module_name: str, names: tuple[str, ...]) -> None:
    """Forget the caches of the kernels ``names`` of ``module_name`` that are older
    than a file of their helpers (call at the end of the kernel module)."""
    for name in names:
        kernel = f"{module_name}:{name}"
        written = _written(_dispatcher(kernel))
        if written is not None and written < _newest_source(_dispatcher(kernel)):
            forget(kernel)
