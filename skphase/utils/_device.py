"""Resolve the ``device`` parameter shared by every skphase estimator."""

import torch

__all__ = ["resolve_device"]


def resolve_device(device="auto"):
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        ``"auto"`` picks the first CUDA device when one is available and the
        CPU otherwise.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the string is not a device torch knows, or if a CUDA device is asked
        for on a machine without one.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device={device!r} is not a valid device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA but no CUDA device is available; "
                "use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return resolved
