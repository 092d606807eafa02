"""Evaluation protocols: k-fold splits of a corpus and the folds a run trains on
(see README, "Evaluation protocols")."""
