"""Operators with their references: the selective scan (:mod:`.scan`), the causal
convolution, hashed dropout and banded attention, each a plain PyTorch reference
beside a fused numba CPU kernel (and, for the scan and the convolution, the CUDA
packages when they import); the time order of backward-in-time scans; the numba
helpers the kernels share; the kernel cache and its precompilation.

Nothing here knows the model: :mod:`dynmultidep.models` builds its layers from
these operators.
"""
