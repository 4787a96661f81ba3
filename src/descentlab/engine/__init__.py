"""descentlab.engine."""
