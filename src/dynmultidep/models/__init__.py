"""Model layer: selective scan, Mamba blocks, MT experts, dynamic fusion and baselines."""
