"""The serving benchmark (see run.py and README.md)."""
