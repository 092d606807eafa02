"""Run plumbing: the session (errors, exit codes, the run folder), resuming,
the run's provenance, distributed training, building the objects a config names,
and loggers."""
