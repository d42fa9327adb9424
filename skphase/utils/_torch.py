"""Small torch helpers: seeding, batching, numpy conversion."""

import torch
from sklearn.utils import check_random_state

__all__ = ["make_generator", "seed_from_random_state", "iter_batches", "to_numpy", "map_batches"]


def seed_from_random_state(random_state):
    """An integer seed drawn from a ``random_state`` parameter (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def make_generator(random_state, device="cpu"):
    """A :class:`torch.Generator` on ``device`` seeded from ``random_state``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed_from_random_state(random_state))
    return generator


def iter_batches(n, batch_size):
    """Yield ``slice`` objects that cover ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def to_numpy(tensor):
    """Detach a tensor, move it to the CPU and return a numpy array."""
    return tensor.detach().cpu().numpy()


@torch.no_grad()
def map_batches(fn, X, *, batch_size, device, progress=None):
    """Apply ``fn`` to ``X`` batch by batch on ``device`` and concatenate on the CPU.

    Parameters
    ----------
    fn : callable
        Maps a tensor batch on ``device`` to a tensor (or a tuple of tensors).
    X : torch.Tensor
        CPU tensor whose first axis indexes samples.
    batch_size : int
        Number of samples moved to ``device`` at a time; bounds memory.
    device : torch.device
    progress : callable or None
        Wraps the batch iterator (e.g. a tqdm factory) when given.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        CPU tensors with the outputs of every batch concatenated on axis 0.
    """
    batches = iter_batches(X.shape[0], batch_size)
    if progress is not None:
        batches = progress(list(batches))
    outputs = []
    for batch in batches:
        out = fn(X[batch].to(device, non_blocking=True))
        outputs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if not outputs:
        raise ValueError("map_batches needs at least one sample.")
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)
