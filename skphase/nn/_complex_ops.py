"""Complex arithmetic on split real tensors, and non-linearities on complex channels.

skphase networks keep complex activations as pairs of real tensors
``(re, im)`` with channels last: real matrix products are what CPUs and GPUs
run fastest, and a complex 1x1 projection becomes one real GEMM.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils._precision import LOW_PRECISION_DTYPES, autocast_disabled

__all__ = [
    "safe_modulus",
    "NONLINEARITIES",
    "ComplexNonlinearity",
]


class _SafeModulus(torch.autograd.Function):
    """``|z| = sqrt(re^2 + im^2)`` whose gradient is 0 (a subgradient) at ``z = 0``."""

    @staticmethod
    def forward(ctx, re, im):
        # Only the inputs are kept: in a scattering block they are views of the filtering's output,
        # which the graph keeps anyway, and the modulus costs one cheap pass to compute again.
        ctx.save_for_backward(re, im)
        return torch.hypot(re, im)

    @staticmethod
    def backward(ctx, grad):
        re, im = ctx.saved_tensors
        modulus = torch.hypot(re, im)
        at_zero = modulus == 0
        # d|z|/dre = re/|z|; defined as 0 where |z| = 0 instead of 0/0 = NaN.
        # create_graph=True needs differentiable ops; torch.compile, ops without out= (it fuses them).
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            scale = (grad / modulus).masked_fill(at_zero, 0)
            return scale * re, scale * im
        # In place: this runs on the largest activations of a network, where every temporary
        # counts in the peak memory.
        scale = torch.div(grad, modulus, out=modulus).masked_fill_(at_zero, 0)
        return scale * re, scale.mul_(im)


def safe_modulus(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """Complex modulus of ``re + i im`` with a finite gradient everywhere.

    Parameters
    ----------
    re, im : torch.Tensor
        Real and imaginary parts, same shape.

    Returns
    -------
    torch.Tensor
        ``sqrt(re**2 + im**2)``; its gradient at 0 is 0.

    See Also
    --------
    ComplexNonlinearity : the non-linearities built on it.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import safe_modulus
    >>> re, im = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    >>> safe_modulus(re, im).sum().backward()
    >>> re.grad
    tensor([0.])
    """
    return _SafeModulus.apply(re, im)


def _unit_phase(re, im, modulus):
    """``z / |z|`` as (re, im), with 0 where ``z = 0``."""
    inverse = torch.where(modulus > 0, 1.0 / modulus.clamp_min(torch.finfo(modulus.dtype).tiny), 0.0)
    return re * inverse, im * inverse


def _shape(n_channels):
    return (n_channels,) if isinstance(n_channels, int) else tuple(n_channels)


class ComplexNonlinearity(nn.Module):
    """A point-wise non-linearity on complex channels stored as ``(re, im)``.

    Parameters
    ----------
    kind : str
        One of :data:`NONLINEARITIES`:

        - ``"modulus"``: ``|z|``, collapses the phase; the output is real.
        - ``"soft_threshold"``: ``relu(1 - lambda / |z|) z``, learned ``lambda >= 0`` per
          channel (initialised to 0.1); keeps the phase.
        - ``"modulus_collapse"``: ``z / |z|``, keeps only the phase.
        - ``"sigmoid"``: ``sigmoid(g |z| + b) z / |z|`` with learned gain and bias per channel.
        - ``"tanh"``: ``tanh(|z|) z / |z|``.
        - ``"relu"``: ``relu(Re z) + i relu(Im z)``, the real rectifier on each part.
        - ``"identity"``: no non-linearity.
    n_channels : int or tuple of int
        Number of complex channels (the last axis), or the shape of the trailing
        axes, for the per-channel learned parameters.

    Attributes
    ----------
    real_output : bool
        True when the output is real (the modulus): the caller stores no
        imaginary part.

    See Also
    --------
    safe_modulus : the modulus with a finite gradient at 0.
    ScatteringBlock : the block that applies the non-linearity.

    Notes
    -----
    The output has the dtype of the input. Low-precision input (bfloat16 or
    float16, the products of an autocast region) is mapped in float32: the
    modulus, its gradient ``z / |z|`` and the divisions by ``|z|`` of the
    phase-preserving maps would otherwise lose their accuracy for small ``|z|``,
    and autocast leaves these point-wise operations in the input's dtype.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import ComplexNonlinearity
    >>> rho = ComplexNonlinearity("modulus", n_channels=2)
    >>> rho(torch.full((1, 2), 3.0), torch.full((1, 2), 4.0))
    tensor([[5., 5.]])
    """

    def __init__(self, kind: str, n_channels: int | tuple[int, ...]):
        super().__init__()
        if kind not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {kind!r}.")
        self.kind = kind
        self.real_output = kind == "modulus"
        if kind == "soft_threshold":
            self.threshold = nn.Parameter(torch.full(_shape(n_channels), 0.1))
        elif kind == "sigmoid":
            self.gain = nn.Parameter(torch.ones(_shape(n_channels)))
            self.bias = nn.Parameter(torch.zeros(_shape(n_channels)))

    def extra_repr(self):
        return f"kind={self.kind!r}"

    def forward(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Apply the non-linearity to ``z = re + i im``.

        Parameters
        ----------
        re, im : torch.Tensor of shape (..., n_channels)
            Real and imaginary parts of the input.

        Returns
        -------
        torch.Tensor or tuple of torch.Tensor
            ``|z|`` (one tensor) for the modulus, else ``(re, im)`` of the output.
        """
        kind = self.kind
        if kind == "identity":
            return re, im
        if kind == "relu":  # exact in any dtype
            return torch.relu(re), torch.relu(im)
        dtype = re.dtype
        if dtype not in LOW_PRECISION_DTYPES:
            return self._map(re, im)
        with autocast_disabled(re.device.type):
            out = self._map(re.float(), im.float())
        return out.to(dtype) if torch.is_tensor(out) else (out[0].to(dtype), out[1].to(dtype))

    def _map(self, re, im):
        """The maps that go through ``|z|``, in the dtype of ``re`` and ``im``."""
        kind = self.kind
        modulus = safe_modulus(re, im)
        if kind == "modulus":
            return modulus
        if kind == "soft_threshold":
            # relu(|z| - lambda) z / |z|, written so that the gradient is finite at 0.
            shrunk = torch.relu(modulus - self.threshold.abs())
            phase_re, phase_im = _unit_phase(re, im, modulus)
            return shrunk * phase_re, shrunk * phase_im
        phase_re, phase_im = _unit_phase(re, im, modulus)
        if kind == "modulus_collapse":
            return phase_re, phase_im
        if kind == "sigmoid":
            amplitude = torch.sigmoid(self.gain * modulus + self.bias)
        else:  # tanh
            amplitude = torch.tanh(modulus)
        return amplitude * phase_re, amplitude * phase_im


#: The ``kind`` values of :class:`ComplexNonlinearity` (the ``nonlinearity`` of the estimators).
NONLINEARITIES = (
    "modulus",
    "soft_threshold",
    "modulus_collapse",
    "sigmoid",
    "tanh",
    "relu",
    "identity",
)
