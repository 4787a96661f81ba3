"""descentlab.report."""
