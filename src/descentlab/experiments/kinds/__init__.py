"""The kinds of trial a comparison compares optimizers on."""
