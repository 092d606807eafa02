"""Model layer: Mamba blocks, MT experts, dynamic fusion and baselines."""
