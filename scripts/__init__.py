"""Command-line programs behind the make targets (`python -m scripts.NAME` or `scripts/NAME.py`)."""
