"""ModelService: pure builders of its children and the computation of its status."""
