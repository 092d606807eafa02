"""The tasks Hydra runs (``src/train.py``, ``src/eval.py``, ``src/predict.py``:
:mod:`.train`, :mod:`.evaluate`, :mod:`.predict`) and what they are made of: the
LightningModule (:mod:`.module`), its learning-rate schedules, the callbacks
(:mod:`.callbacks`, mirroring ``conf/callbacks/``), checkpoints, the run
plumbing (:mod:`.run`: session, resume, run info, distribution, builders,
loggers) and the files a run writes (:mod:`.outputs`)."""
