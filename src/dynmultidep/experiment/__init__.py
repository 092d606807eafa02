"""The experiment shell: the LightningModule, training/evaluation/prediction tasks,
metrics, reports and the objects Hydra configs build."""

from dynmultidep.experiment.annealing import GateTemperatureAnnealing
from dynmultidep.experiment.classifier import DepressionClassifier

__all__ = ["DepressionClassifier", "GateTemperatureAnnealing"]
