"""taskgate: a self-hostable, GoAPI-compatible gateway and job engine for generative-AI tasks."""

__version__ = "0.1.0"
__all__ = ["__version__"]
