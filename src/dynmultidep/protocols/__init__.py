"""Evaluation protocols: k-fold splits, tuned decision thresholds, calibration and
significance between models (see README, "Evaluation protocols")."""
