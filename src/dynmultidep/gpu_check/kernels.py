"""The optional CUDA kernel packages' source distributions, made ready to build for
one GPU architecture.

Their ``setup.py`` emit ``-gencode`` flags for nine architectures (sm_75 to sm_121
with CUDA 13), and these override ``TORCH_CUDA_ARCH_LIST``: a build for every one of
them takes many times as long as one for the GPU at hand. :func:`unpack_for_arch`
unpacks a source distribution and, just before the flags are used (the line
``# HACK: The compiler flag -D_GLIBCXX_USE_CXX11_ABI``, once in each), keeps every
other flag and replaces the architectures with the one given.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

MARKER = "# HACK: The compiler flag"


def arch_patch(setup_py: str, capability: str) -> str:
    """``setup_py`` building for ``capability`` (e.g. ``"9.0"``) alone."""
    lines = setup_py.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.lstrip().startswith(MARKER)]
    if len(found) != 1:
        raise ValueError(f"setup.py: expected one line starting {MARKER!r}, found {len(found)}")
    index = found[0]
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    arch = capability.replace(".", "")
    patch = (f"{indent}cc_flag = [f for f in cc_flag if f != '-gencode' and "
             f"not f.startswith('arch=')]  # one architecture: sm_{arch}\n"
             f"{indent}cc_flag += ['-gencode', "
             f"'arch=compute_{arch},code=sm_{arch}']\n")  # fmt: skip
    return "".join(lines[:index]) + patch + "".join(lines[index:])


def unpack_for_arch(sdist: Path, dest: Path, capability: str) -> Path:
    """Unpack ``sdist`` under ``dest``, patch its ``setup.py``; return the source folder."""
    with tarfile.open(sdist) as archive:
        archive.extractall(dest, filter="data")
    name = sdist.name.removesuffix(".tar.gz")
    source = dest / name
    setup_py = source / "setup.py"
    if not setup_py.is_file():
        raise ValueError(f"{sdist}: no {name}/setup.py inside")
    setup_py.write_text(arch_patch(setup_py.read_text(), capability))
    return source
