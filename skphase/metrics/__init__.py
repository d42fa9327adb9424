"""Measurements on representations: stability, invariance, separation, feature ansatz."""

__all__ = []
