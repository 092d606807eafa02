"""The experiment shell: the LightningModule, training/evaluation/prediction tasks,
metrics, reports and the objects Hydra configs build.

Importing it registers the configs' OmegaConf resolvers (:mod:`.resolvers`)."""

from dynmultidep.experiment import resolvers  # noqa: F401  (registers ${corpus_video_dim:...})
from dynmultidep.experiment.annealing import GateTemperatureAnnealing
from dynmultidep.experiment.classifier import DepressionClassifier

__all__ = ["DepressionClassifier", "GateTemperatureAnnealing"]
