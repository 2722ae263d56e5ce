"""orders: the platform's protected orders API."""

__version__ = "0.1.0"
