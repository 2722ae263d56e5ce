"""gateway: the platform's single entry point."""

__version__ = "0.1.0"
