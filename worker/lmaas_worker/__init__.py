"""What lmaas pods run: `lmaas train`, `lmaas compress` and `lmaas serve` (each arrives with its issue).

The worker never needs the Kubernetes API: its configuration is the CR spec, mounted as a file.
"""
