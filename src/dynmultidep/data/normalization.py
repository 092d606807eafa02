"""Per-feature standardisation, fitted on the training fold only.

The statistics travel with the run: :class:`FeatureStandardizer` has a
``state_dict`` that the data module puts into every checkpoint, so evaluation
uses the training statistics, never the test fold's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from dynmultidep.data.vlogs import Vlog

MODALITIES = ("audio", "video")
MIN_STD = 1e-6  # a constant feature is centred, not divided by ~0


class FeatureStandardizer:
    """``x -> (x - mean) / std`` per feature and modality.

    Statistics are over every valid step of the training vlogs (float64
    sums), as the model sees them: all-zero no-face rows count as data (with face
    normalisation they hold the vlog's mean face by then).

    Args:
        shared_scale: modality -> how many of its leading features share one unit
            (landmarks in face coordinates): each feature is centred, and those are
            divided by one standard deviation (the root mean square over them), so a
            landmark that barely moves stays small instead of being blown up to the
            size of one that moves a lot. Later features (head pose) keep their own.
    """

    def __init__(self, shared_scale: Mapping[str, int] | None = None) -> None:
        shared_scale = dict(shared_scale or {})
        unknown = sorted(set(shared_scale) - set(MODALITIES))
        if unknown:
            raise ValueError(f"shared_scale takes modalities of {MODALITIES}, got {unknown}")
        self.shared_scale = shared_scale
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def fitted(self) -> bool:
        return bool(self.stats)

    def fit(self, vlogs: Sequence[Vlog]) -> FeatureStandardizer:
        if not vlogs:
            raise ValueError("cannot fit feature statistics on no vlogs")
        for name in MODALITIES:
            total = sum_sq = 0.0
            count = 0
            for vlog in vlogs:
                x = getattr(vlog, name).astype(np.float64)
                total = total + x.sum(axis=0)
                sum_sq = sum_sq + (x * x).sum(axis=0)
                count += len(x)
            mean = total / count
            var = np.maximum(sum_sq / count - mean * mean, 0.0)
            shared = self.shared_scale.get(name, 0)
            if shared:
                var[:shared] = var[:shared].mean()
            std = np.sqrt(var)
            std[std < MIN_STD] = 1.0
            self.stats[name] = (
                torch.as_tensor(mean, dtype=torch.float32),
                torch.as_tensor(std, dtype=torch.float32),
            )
        return self

    def transform(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x: (..., D)`` of modality ``name``; identity if unfitted."""
        if name not in self.stats:
            return x
        mean, std = self.stats[name]
        return (x - mean) / std

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, (mean, std) in self.stats.items():
            state[f"{name}_mean"] = mean.clone()
            state[f"{name}_std"] = std.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stats = {
            name: (torch.as_tensor(state[f"{name}_mean"]), torch.as_tensor(state[f"{name}_std"]))
            for name in MODALITIES
            if f"{name}_mean" in state
        }
