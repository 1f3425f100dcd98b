"""The simulated upstream provider (``taskgate upstream-sim``, DESIGN.md §9)."""
