"""Progress bars for long work, shown when an estimator's ``verbose`` is set."""

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(verbose, desc):
    """A factory wrapping an iterable in a tqdm bar when ``verbose`` is truthy, else None."""
    if not verbose:
        return None
    return lambda iterable: tqdm(iterable, desc=desc, leave=False)
