"""Std and P of a scattering block: per-channel standardisation and the complex 1x1 projection.

Complex channels are stored as columns ``[re | im | real]`` of real rows (one row
per pixel): the real parts of the complex channels, their imaginary parts, then
the real channels (complex ones with a zero imaginary part: modulus outputs).
:class:`ComplexStandardization` owns the running statistics and decides between
batch and running statistics; either way it folds them into the projection's
product (:mod:`skphase.nn._fused_ops`) rather than writing a standardised copy
of the largest activation of the block.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..utils._precision import autocast_disabled, statistics_dtype
from ._fused_ops import column_scale, folded_projection, standardized_projection
from ._recompute import saved_as_recomputation

__all__ = ["ComplexStandardization", "ComplexProjection", "semi_unitary"]


class ComplexStandardization(nn.Module):
    """Per-channel standardisation without affine parameters, folded into the projection that follows.

    Complex channels: the complex mean is removed and the result divided by
    ``sqrt(eps + E|z - mu|^2)``; real channels likewise with their variance.
    Batch statistics in training (the running averages move towards them),
    running averages in eval mode.

    Parameters
    ----------
    n_complex, n_real : int
        Numbers of complex and real channels.
    eps : float, default=1e-5
        Added to the variances under the square root.
    momentum : float, default=0.1
        Weight of a batch's statistics in the running averages.

    Attributes
    ----------
    running_mean : torch.Tensor of shape (2 n_complex + n_real,)
        Per column ``[re | im | real]``.
    running_var : torch.Tensor of shape (n_complex + n_real,)
        Per channel, ``E|z - mu|^2`` (without correction).

    See Also
    --------
    ComplexProjection : the projection it folds the standardisation into.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import ComplexProjection, ComplexStandardization
    >>> std = ComplexStandardization(n_complex=2, n_real=1)
    >>> proj = ComplexProjection(n_complex=2, n_real=1, n_out=3, generator=torch.Generator().manual_seed(0))
    >>> rows = 5 + 2 * torch.randn(1000, 5)  # columns [re, re, im, im, real]
    >>> tuple(std(rows, proj).shape)  # P(Std(rows)): 3 complex channels as [re | im]
    (1000, 6)
    >>> standardized = std(rows)  # Std alone
    >>> bool(standardized.mean(0).abs().max() < 1e-5), round(standardized[:, 4].var(correction=0).item(), 3)
    (True, 1.0)
    >>> std.running_mean.shape, std.running_var.shape
    (torch.Size([5]), torch.Size([3]))
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, n_complex: int, n_real: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(2 * n_complex + n_real))
        self.register_buffer("running_var", torch.ones(n_complex + n_real))
        self.n_complex = n_complex

    def forward(self, flat: torch.Tensor, projection: ComplexProjection | None = None) -> torch.Tensor:
        """Standardise ``flat`` and apply ``projection`` to the result: ``projection((flat - mean) * scale)``.

        Parameters
        ----------
        flat : torch.Tensor of shape (rows, 2 n_complex + n_real)
            Columns ``[re | im | real]``.
        projection : ComplexProjection or None
            Without one, the standardised rows themselves (the same computation with an identity
            matrix in place of ``P``, which costs a ``d x d`` product).

        Returns
        -------
        torch.Tensor of shape (rows, 2 n_out), or of the shape of ``flat`` without projection
            In the dtype autocast gives the product (:func:`~skphase.utils._precision.compute_dtype`).
            In training one autograd node computes the batch statistics, the standardisation and
            the product; the running statistics are updated in at least float32.
        """
        if projection is None:
            matrix = torch.eye(flat.shape[1], dtype=statistics_dtype(flat.dtype), device=flat.device)
        else:
            matrix = projection.real_matrix()
        if self.training:
            # The real matrix is twice the size of the weights it is built from: the backward rebuilds it
            # (under torch.compile the compiler chooses, and saved-tensor hooks would break its graph).
            keep = (contextlib.nullcontext() if projection is None or torch.compiler.is_compiling()
                    else saved_as_recomputation(matrix, projection.real_matrix, tuple(projection.parameters())))
            with keep:
                out, mean, var = standardized_projection(flat, matrix, self.n_complex, self.eps)
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(var.to(self.running_var.dtype), self.momentum)
            return out
        dtype = statistics_dtype(flat.dtype)
        mean, var = self.running_mean.to(dtype), self.running_var.to(dtype)
        with autocast_disabled(flat.device.type):
            scale = column_scale(var, self.n_complex, self.eps)
        return folded_projection(flat, matrix, mean, scale)


def semi_unitary(n_out, n_in, generator=None):
    """A complex ``(n_out, n_in)`` matrix with orthonormal rows (or columns), from the SVD of a Gaussian."""
    gaussian = torch.complex(
        torch.randn(n_out, n_in, generator=generator, dtype=torch.float64),
        torch.randn(n_out, n_in, generator=generator, dtype=torch.float64),
    )
    u, _, vh = torch.linalg.svd(gaussian, full_matrices=False)
    return (u @ vh).to(torch.complex64)


class ComplexProjection(nn.Module):
    """Learned complex 1x1 convolution without bias, as one real matrix product.

    Parameters
    ----------
    n_complex, n_real : int
        Complex and real input channels (real inputs are complex ones with a
        zero imaginary part: the modulus outputs).
    n_out : int
        Complex output channels.
    generator : torch.Generator or None
        Seeds the semi-unitary initialisation.

    See Also
    --------
    ComplexStandardization : the standardisation folded into it in a block.

    Notes
    -----
    Shapes: input ``(rows, 2 n_complex + n_real)`` as ``[re | im | real]``; output
    ``(rows, 2 n_out)`` as ``[re | im]``. In a scattering block the projection is
    applied by :class:`ComplexStandardization`, which folds the standardisation into
    its product; called on its own it is the plain product ``P x``.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import ComplexProjection
    >>> proj = ComplexProjection(n_complex=2, n_real=1, n_out=3, generator=torch.Generator().manual_seed(0))
    >>> tuple(proj(torch.randn(10, 5)).shape)
    (10, 6)
    >>> tuple(proj.real_matrix().shape)  # acting on [re | im | real]
    (6, 5)
    """

    def __init__(self, n_complex: int, n_real: int, n_out: int, generator: torch.Generator | None = None):
        super().__init__()
        weight = semi_unitary(n_out, n_complex + n_real, generator)
        self.weight_real = nn.Parameter(weight.real.clone())
        self.weight_imag = nn.Parameter(weight.imag.clone())
        self.n_complex = n_complex

    def real_matrix(self) -> torch.Tensor:
        """Build the real matrix of the complex projection.

        Returns
        -------
        torch.Tensor of shape (2 n_out, 2 n_complex + n_real)
            The matrix acting on rows ``[re | im | real]``.
        """
        k = self.n_complex
        a, b = self.weight_real, self.weight_imag
        top = torch.cat([a[:, :k], -b[:, :k], a[:, k:]], dim=1)
        bottom = torch.cat([b[:, :k], a[:, :k], b[:, k:]], dim=1)
        return torch.cat([top, bottom], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project the rows, ``P x``.

        Parameters
        ----------
        x : torch.Tensor of shape (rows, 2 n_complex + n_real)
            Rows ``[re | im | real]``.

        Returns
        -------
        torch.Tensor of shape (rows, 2 n_out)
            ``[re | im]`` of the output, in the dtype autocast gives the product.
        """
        return folded_projection(x, self.real_matrix())
