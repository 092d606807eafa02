"""Train, select the best checkpoint on validation, test it.

    python src/train.py                                  # synthetic corpus, CPU, a few minutes
    python src/train.py experiment=dvlog_dynmultidep dataset.root=/data/dvlog
    python src/train.py --cfg job                        # print the composed config

See conf/train.yaml and dynmultidep.experiment.train.
"""

import hydra
from omegaconf import DictConfig

from dynmultidep.experiment.session import guarded
from dynmultidep.experiment.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return guarded(train)(cfg)


if __name__ == "__main__":
    main()
