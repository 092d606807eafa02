"""Train, select the best checkpoint on validation, test it.

    python src/train.py                                  # synthetic corpus, CPU, a few minutes
    python src/train.py experiment=dvlog_dynmultidep dataset.root=/data/dvlog
    python src/train.py -m sweep=gender_grid             # a grid: see conf/sweep/
    python src/train.py resume=logs/train/runs/<stamp>   # continue an interrupted run
    python src/train.py --cfg job                        # print the composed config

See conf/train.yaml and dynmultidep.tasks.train.
"""

import sys

import hydra
from omegaconf import DictConfig

from dynmultidep.errors import DynMultiDepError
from dynmultidep.tasks.run.resume import resume_argv
from dynmultidep.tasks.run.session import exit_with_error, guarded
from dynmultidep.tasks.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return guarded(train)(cfg)


if __name__ == "__main__":
    try:
        sys.argv = resume_argv(sys.argv)
    except DynMultiDepError as err:
        exit_with_error(err)
    main()
