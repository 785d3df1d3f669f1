"""Samples of the documentation (see examples/__init__.py)."""
