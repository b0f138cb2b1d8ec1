"""The package version (a module of its own, so that any layer can read it without importing ``ecpe``)."""
__version__ = "0.1.0"
