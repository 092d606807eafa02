"""Score unlabelled vlogs with a trained checkpoint (a research tool, not a diagnostic device).

    python src/predict.py ckpt_path=PATH.ckpt input=DIR_OR_FILE [output=preds.csv]
    python src/predict.py ckpt_path=PATH.ckpt input=/data/DAIC-WOZ   # a release's sessions

See conf/predict.yaml and dynmultidep.tasks.predict.
"""

import hydra
from omegaconf import DictConfig

from dynmultidep.tasks.predict import predict
from dynmultidep.tasks.run.session import guarded


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    guarded(predict)(cfg)


if __name__ == "__main__":
    main()
