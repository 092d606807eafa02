"""What a run writes besides its checkpoints: metrics and prediction files, the
figures, and prediction timelines."""
