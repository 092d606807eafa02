"""Lightning callbacks the configs add (``conf/callbacks/``): gate temperature
annealing, per-epoch reseeding, per-epoch wall time and memory."""
