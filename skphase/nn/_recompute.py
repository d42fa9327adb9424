"""Saved activations kept as the recipe that rebuilds them, so that training holds less memory.

A scattering block's projection keeps its input for the gradient of its matrix:
the rows ``[linear coefficients | rho(W x)]`` of every pixel, the largest
activation of the block. They are a cheap function (a point-wise map and a
concatenation) of the filtering's output, which the graph keeps anyway for the
non-linearity's backward. Likewise the projection's real matrix is rebuilt from
its complex weights in one pass. :func:`saved_as_recomputation` has autograd keep
the recipe in place of such a tensor, and run it when the backward reads it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence

import torch

__all__ = ["saved_as_recomputation", "will_be_recomputed"]


class _Recipe:
    """What autograd keeps in place of a saved tensor: the call that rebuilds it, and what it reads."""

    def __init__(self, recompute: Callable[[], torch.Tensor], reads: Sequence[torch.Tensor]):
        self.recompute = recompute
        self.reads = tuple(reads)
        self.versions = tuple(tensor._version for tensor in self.reads)

    def __call__(self) -> torch.Tensor:
        # Autograd refuses a saved tensor modified in place since the forward; a recipe reading
        # one would rebuild a different tensor, so it refuses too.
        if any(tensor._version != version for tensor, version in zip(self.reads, self.versions)):
            raise RuntimeError(
                "A tensor needed to recompute a saved activation (an input of the block's non-linearity "
                "or one of its parameters) was modified in place between the forward and the backward "
                "pass, so the gradient would be wrong. Run backward before changing them in place "
                "(e.g. before optimizer.step())."
            )
        return self.recompute()


def _signature(tensor: torch.Tensor) -> tuple:
    """Where and how ``tensor`` lies in memory: equal for the tensor itself, its aliases of the same view."""
    return tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype, tensor.device


_state = threading.local()  # the recipes of the blocks entered on this thread, by signature


def _pack(recipes, saved):
    return recipes.get(_signature(saved), saved)


def _unpack(packed):
    return packed() if isinstance(packed, _Recipe) else packed


@contextlib.contextmanager
def saved_as_recomputation(
    tensor: torch.Tensor, recompute: Callable[[], torch.Tensor], reads: Sequence[torch.Tensor] = ()
) -> Iterator[None]:
    """Within the block, ops that save ``tensor`` for their backward keep ``recompute`` instead.

    Parameters
    ----------
    tensor : torch.Tensor
        The activation not to keep.
    recompute : callable
        Returns a tensor equal to ``tensor``, bit for bit (deterministic ops on the ``reads``).
        The backward runs it under its own grad mode: without grad normally, with grad under
        ``create_graph=True``, so that higher derivatives still flow through it.
    reads : sequence of torch.Tensor
        The tensors ``recompute`` reads (inputs and parameters); if one of them is modified in
        place before the backward, the backward raises a RuntimeError, as autograd does for a
        saved tensor.

    Notes
    -----
    Blocks nest: inside another one, both tensors are kept as their recipes. Other tensors
    saved within the block are kept as usual. Saved-tensor hooks of an enclosing
    :func:`torch.autograd.graph.saved_tensors_hooks` block do not see the tensors saved here.
    Nothing is saved without grad mode: the block then costs nothing.
    """
    if not torch.is_grad_enabled():
        yield
        return
    recipes = getattr(_state, "recipes", None)
    outermost = recipes is None
    if outermost:
        recipes = _state.recipes = {}
    # Autograd keeps the hooks with every tensor saved here: they hold the tensor's signature, not
    # the tensor, or they would keep alive what they are meant to free.
    signature = _signature(tensor)
    enclosing = recipes.get(signature)
    recipes[signature] = _Recipe(recompute, reads)
    try:
        if outermost:
            with torch.autograd.graph.saved_tensors_hooks(functools.partial(_pack, recipes), _unpack):
                yield
        else:
            yield
    finally:
        if enclosing is None:
            del recipes[signature]
        else:
            recipes[signature] = enclosing
        if outermost:
            _state.recipes = None


def will_be_recomputed(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``, saved now, comes back to the backward rebuilt by a recipe.

    Such a tensor is a fresh buffer, rebuilt for each backward that reads it: the
    backward may overwrite it in place.
    """
    recipes = getattr(_state, "recipes", None)
    return recipes is not None and _signature(tensor) in recipes
