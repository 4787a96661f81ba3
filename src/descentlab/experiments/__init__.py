"""descentlab.experiments."""
