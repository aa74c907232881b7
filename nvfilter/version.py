"""The version of nvfilter (what a .nvw records as its writer)."""

__version__ = "0.1.0"
