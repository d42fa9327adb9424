"""Saved activations kept as the recipe that rebuilds them, so that training holds less memory.

A scattering block's projection keeps its input for the gradient of its matrix:
the rows ``[linear coefficients | rho(W x)]`` of every pixel, the largest
activation of the block. They are a cheap function (a point-wise map and a
concatenation) of the filtering's output. Likewise the projection's real matrix
is rebuilt from its complex weights in one pass. :func:`saved_as_recomputation`
has autograd keep the recipe in place of such a tensor, and run it when the
backward reads it.

The filtering's output, which the non-linearity's backward reads, is itself a
linear function of the block's input, which the graph keeps anyway (the previous
block saves it as its output), and up to ``1 + L`` times larger.
:func:`saved_views_as_recomputation` keeps every saved view of it as its place in
a rebuilt copy, rebuilt once per backward and shared by every op that reads it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from ..utils._precision import active_autocast_dtype

__all__ = ["saved_as_recomputation", "saved_views_as_recomputation", "will_be_recomputed"]


class _Recipe:
    """What autograd keeps in place of a saved tensor: the call that rebuilds it, and what it reads."""

    def __init__(self, recompute: Callable[[], Any], reads: Sequence[torch.Tensor]):
        self.recompute = recompute
        self.reads = tuple(reads)
        self.versions = tuple(tensor._version for tensor in self.reads)
        # The backward runs outside the forward's autocast region: the recipe runs in it again, so that
        # what it rebuilds has the dtypes, and the values, of what the forward saved.
        self.device_type = self.reads[0].device.type if self.reads else "cpu"
        self.autocast_dtype = active_autocast_dtype(self.device_type)

    def __call__(self) -> Any:
        # Autograd refuses a saved tensor modified in place since the forward; a recipe reading
        # one would rebuild a different tensor, so it refuses too.
        if any(tensor._version != version for tensor, version in zip(self.reads, self.versions)):
            raise RuntimeError(
                "A tensor needed to recompute a saved activation (an input of the block's non-linearity "
                "or one of its parameters) was modified in place between the forward and the backward "
                "pass, so the gradient would be wrong. Run backward before changing them in place "
                "(e.g. before optimizer.step())."
            )
        if self.autocast_dtype is None:
            return self.recompute()
        with torch.autocast(self.device_type, dtype=self.autocast_dtype):
            return self.recompute()


class _SharedRecipe(_Recipe):
    """A recipe for tensors whose saved views all read one rebuilt copy.

    The copy is rebuilt at the first read of a backward and kept while a saved view
    still refers to this recipe: autograd releases those after the nodes that read
    them have run, and the copy with them.
    """

    def __init__(self, recompute: Callable[[], Any], reads: Sequence[torch.Tensor]) -> None:
        super().__init__(recompute, reads)
        self.rebuilt: tuple[torch.Tensor, ...] | None = None

    def __call__(self) -> tuple[torch.Tensor, ...]:
        if self.rebuilt is None:
            self.rebuilt = tuple(super().__call__())
        return self.rebuilt


class _SavedView:
    """What autograd keeps in place of a view of rebuilt memory: the recipe and the view's geometry."""

    def __init__(self, recipe: _SharedRecipe, index: int, view: torch.Tensor):
        self.recipe, self.index = recipe, index
        self.geometry = view.shape, view.stride(), view.storage_offset()

    def __call__(self) -> torch.Tensor:
        # Rebuilt tensors are laid out as the originals, so the view has the same place in their memory.
        return self.recipe()[self.index].as_strided(*self.geometry)


def _signature(tensor: torch.Tensor) -> tuple:
    """Where and how ``tensor`` lies in memory: equal for the tensor itself, its aliases of the same view."""
    return tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype, tensor.device


def _memory(tensor: torch.Tensor) -> tuple:
    """The memory ``tensor`` lies in: equal for every view of one tensor (of the same dtype)."""
    return "memory", tensor.untyped_storage().data_ptr(), tensor.dtype, tensor.device


_state = threading.local()  # the recipes of the blocks entered on this thread, by signature


def _pack(recipes, saved):
    recipe = recipes.get(_signature(saved))
    if recipe is not None:
        return recipe
    shared = recipes.get(_memory(saved))
    return saved if shared is None else _SavedView(*shared, saved)


def _unpack(packed):
    return packed() if isinstance(packed, (_Recipe, _SavedView)) else packed


@contextlib.contextmanager
def _registered(entries: dict) -> Iterator[None]:
    """Within the block, the pack hook looks ``entries`` up (signatures or memories to what autograd keeps)."""
    recipes: dict | None = getattr(_state, "recipes", None)
    outermost = recipes is None
    if recipes is None:
        recipes = _state.recipes = {}
    # Autograd keeps the hooks with every tensor saved here: they hold the tensors' signatures, not
    # the tensors, or they would keep alive what they are meant to free.
    enclosing = {key: recipes[key] for key in entries if key in recipes}
    recipes.update(entries)
    try:
        if outermost:
            with torch.autograd.graph.saved_tensors_hooks(functools.partial(_pack, recipes), _unpack):
                yield
        else:
            yield
    finally:
        for key in entries:
            del recipes[key]
        recipes.update(enclosing)
        if outermost:
            _state.recipes = None


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
        ``create_graph=True``, so that higher derivatives still flow through it; and in the
        forward's autocast region, if it ran in one.
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
    with _registered({_signature(tensor): _Recipe(recompute, reads)}):
        yield


@contextlib.contextmanager
def saved_views_as_recomputation(
    tensors: Sequence[torch.Tensor],
    recompute: Callable[[], Sequence[torch.Tensor]],
    reads: Sequence[torch.Tensor] = (),
) -> Iterator[Callable[[], tuple[torch.Tensor, ...]]]:
    """Within the block, ops that save a view of ``tensors`` keep its place in a rebuilt copy instead.

    Parameters
    ----------
    tensors : sequence of torch.Tensor
        The activations not to keep, with every view of their memory (each tensor stands for
        all of its memory, e.g. ``re`` and ``im`` for the two halves of one buffer).
    recompute : callable
        Returns tensors equal to ``tensors``, bit for bit, and laid out in memory the same way
        (same shapes, strides and storage offsets). It runs at most once per backward, at the
        first read of a saved view, under the grad mode and autocast region described in
        :func:`saved_as_recomputation`.
    reads : sequence of torch.Tensor
        The tensors ``recompute`` reads, checked for in-place changes as in
        :func:`saved_as_recomputation`.

    Yields
    ------
    rebuilt : callable
        Returns the rebuilt tensors, for recipes that read them (see
        :func:`saved_as_recomputation`): they share the copy, which lives as long as a saved
        view or such a recipe needs it. Call it only in the backward.

    Notes
    -----
    The rebuilt copy is read, never written, by the backward: ops whose backward would
    overwrite a saved input in place see the view as recomputed afresh only through
    :func:`will_be_recomputed`, which stays False for these views.
    """
    recipe = _SharedRecipe(recompute, reads)
    if not torch.is_grad_enabled():
        yield recipe
        return
    with _registered({_memory(tensor): (recipe, index) for index, tensor in enumerate(tensors)}):
        yield recipe


def will_be_recomputed(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``, saved now, comes back to the backward rebuilt by a recipe.

    Such a tensor is a fresh buffer, rebuilt for each backward that reads it: the
    backward may overwrite it in place.
    """
    recipes = getattr(_state, "recipes", None)
    return recipes is not None and _signature(tensor) in recipes
