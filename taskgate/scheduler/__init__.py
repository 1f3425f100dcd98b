"""The fair dispatcher (rules S1-S7)."""
