"""Benchmarks behind ``make bench`` (``scripts/bench.py``): each module measures one thing
and returns plain rows; the script prints them and writes them as JSON."""
