"""The learnability benchmark: do the models find the cues depression shows?

Each cue family of the synthetic generator (:mod:`dynmultidep.data.synthetic.cues`)
is generated in D-Vlog's layout at D-Vlog's size and at a small size; every model
of the project is trained on it by ``src/train.py``'s task over several seeds and
scored on the test fold (``scripts/learnability.py``, a section of ``make bench``).

* :mod:`.plan`: families, sizes, models and seeds of the full and quick plans;
* :mod:`.jobs`: one training run of one model on one corpus, and its scores;
* :mod:`.runner`: the plan's jobs in parallel worker processes, resumable;
* :mod:`.report`: mean ± std over seeds, the targets, tables.
"""
