"""Progress bars for long work, shown when an estimator's ``verbose`` is set: the one place that makes them."""

from tqdm.auto import tqdm

__all__ = ["progress_bar", "epoch_progress"]


def progress_bar(verbose, desc):
    """A factory wrapping an iterable in a tqdm bar when ``verbose`` is truthy, else None.

    The bar is removed when it ends (``leave=False``): it shows work under way, not a result.
    """
    if not verbose:
        return None
    return lambda iterable: tqdm(iterable, desc=desc, leave=False)


def epoch_progress(verbose, max_iter, epochs_done=0):
    """A factory of one bar per training epoch, over its batches, when ``verbose`` is truthy, else None.

    ``factory(epoch, n_batches)`` returns a tqdm bar named ``epoch k/N``; the
    training loop shows the running loss in its postfix and, at the end, the
    epoch's loss and validation accuracy. Bars stay on screen (``leave=True``)
    as a record of the run.

    Parameters
    ----------
    verbose : int
    max_iter : int
        Epochs of this training run.
    epochs_done : int, default=0
        Epochs of earlier (warm-started) runs, which the epoch numbers continue from.
    """
    if not verbose:
        return None
    last = epochs_done + max_iter
    return lambda epoch, n_batches: tqdm(total=n_batches, desc=f"epoch {epoch}/{last}", unit="batch", leave=True)
