"""Gate temperature annealing, as in DynMM: the softmax temperature of the
gates (the modality gate and, where the model has one, the fusion-level gate)
decays exponentially from its initial value ``temp`` to ``temp_min`` over
training. MTEM's long-short routers keep temperature 1."""

from __future__ import annotations

import lightning as L


class GateTemperatureAnnealing(L.Callback):
    """At the start of epoch ``e``: ``temp_e = max(temp_min, temp_0 * decay ** e)``.

    Args:
        temp_min: the floor.
        decay: per-epoch factor; ``None`` picks the factor that reaches
            ``temp_min`` at the last epoch (``trainer.max_epochs``).

    ``temp_0`` is the model's gate temperature when training starts; it is
    saved with the callback's state, so a resumed run continues the same curve.
    """

    def __init__(self, temp_min: float = 0.1, decay: float | None = None):
        if temp_min <= 0:
            raise ValueError(f"temp_min must be positive, got {temp_min}")
        if decay is not None and not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.temp_min = temp_min
        self.decay = decay
        self.temp_0: float | None = None

    @staticmethod
    def _gates(pl_module: L.LightningModule) -> list:
        """The modality gate, then the fusion-level gate if there is one."""
        net = pl_module.net
        gate = getattr(net, "gate", None)
        if gate is None:
            raise ValueError(
                f"{type(net).__name__} has no gate; remove the gate_annealing callback"
            )
        fusion = getattr(net, "fusion", None)
        return [gate] + ([fusion.gate] if fusion is not None and fusion.gate is not None else [])

    def temperature(self, epoch: int, max_epochs: int) -> float:
        decay = self.decay
        if decay is None:
            steps = max(max_epochs - 1, 1)
            decay = min(1.0, (self.temp_min / self.temp_0) ** (1 / steps))
        return max(self.temp_min, self.temp_0 * decay**epoch)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.temp_0 is None:
            self.temp_0 = float(self._gates(pl_module)[0].temp)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        temp = self.temperature(trainer.current_epoch, trainer.max_epochs or 1)
        for gate in self._gates(pl_module):
            gate.temp = temp
        pl_module.log("gate/temp", temp, on_step=False, on_epoch=True)

    def state_dict(self) -> dict:
        return {"temp_0": self.temp_0}

    def load_state_dict(self, state_dict: dict) -> None:
        self.temp_0 = state_dict.get("temp_0")
