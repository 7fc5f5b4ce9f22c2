"""Version of the numeric core, stored in every result."""

__version__ = "0.1.0"
