"""Evaluate a checkpoint on a fold; writes metrics.json, predictions.csv and plots.

    python src/eval.py ckpt_path=logs/train/runs/.../checkpoints/last.ckpt [fold=valid]

See conf/eval.yaml and dynmultidep.tasks.evaluate.
"""

import hydra
from omegaconf import DictConfig

from dynmultidep.tasks.evaluate import evaluate
from dynmultidep.tasks.run.session import guarded


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    guarded(evaluate)(cfg)


if __name__ == "__main__":
    main()
