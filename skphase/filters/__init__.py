"""Fixed filter banks, built by pure functions (no state, no sklearn)."""

__all__ = []
