"""Benchmarks of `lmaas compress` against torch's dynamic quantization and the seed's flawed algorithms
(see bench/compress/README.md)."""
