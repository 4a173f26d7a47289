"""Image sources for training, evaluation and the demo (all from Debian packages)."""
