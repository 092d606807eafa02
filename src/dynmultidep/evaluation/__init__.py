"""Evaluation: metrics, prediction files, reports, decision thresholds,
calibration, significance between models and pooled k-fold results (see README,
"Evaluation protocols")."""
