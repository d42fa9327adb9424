"""torch modules and functional ops (no sklearn)."""

__all__ = []
