"""The GPU check: one command that exercises every CUDA path of the project on a GPU
machine and reports what it measured (``scripts/gpu_check/run.sh``, ``make gpu-check``).

Layers, each importing only those above it: :mod:`.plan` (what runs, at the sizes of
each device), :mod:`.process` (the context of a check and its commands, streamed and
bounded in time), :mod:`.environment` (the machine, probed in a child process),
:mod:`.steps` (one function per step), :mod:`.report` (JSON and Markdown) and
:mod:`.runner` (the steps in order within the time budget).
"""
