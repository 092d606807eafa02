"""Multiruns: the Hydra callback that checks a grid before its jobs and
summarises it after them, the sweep summary, and comparing sweeps."""
