"""Benchmarks of `lmaas train` against a hand-written torchrun DDP script (see bench/README.md)."""
