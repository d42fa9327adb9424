"""Import kymatio, with a narrow shim for SciPy releases that removed ``scipy.special.sph_harm``.

kymatio 0.3 imports ``scipy.special.sph_harm`` (for its 3-D solid harmonics) when it is
imported at all, and SciPy 1.17 removed that function in favour of ``sph_harm_y`` (SciPy >=
1.15), whose arguments come in another order. skphase only uses kymatio's 2-D scattering, so
rather than pin SciPy for every user, :func:`import_kymatio` adds the old name back, written
with the new function, when (and only when) it is missing. Nothing is changed on SciPy
releases that still have ``sph_harm``.
"""

import importlib

__all__ = ["import_kymatio", "patch_scipy_for_kymatio"]


def _sph_harm(m, n, theta, phi):
    """``scipy.special.sph_harm(m, n, theta, phi)`` (theta azimuthal, phi polar) through ``sph_harm_y``."""
    from scipy.special import sph_harm_y

    return sph_harm_y(n, m, phi, theta)


def patch_scipy_for_kymatio():
    """Give ``scipy.special`` its old ``sph_harm`` when the installed SciPy removed it.

    Returns
    -------
    bool
        True when the shim was installed (now or before), False when SciPy has its own ``sph_harm``.
    """
    import scipy.special

    if getattr(scipy.special, "sph_harm", None) is _sph_harm:
        return True
    if hasattr(scipy.special, "sph_harm") or not hasattr(scipy.special, "sph_harm_y"):
        return False
    scipy.special.sph_harm = _sph_harm
    return True


def import_kymatio(module="kymatio.torch"):
    """Import a kymatio module after :func:`patch_scipy_for_kymatio`.

    Parameters
    ----------
    module : str, default="kymatio.torch"

    Returns
    -------
    module

    Raises
    ------
    ImportError
        Saying how to install kymatio when it is missing or cannot be imported.
    """
    patch_scipy_for_kymatio()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"The fixed scattering transform needs kymatio (>= 0.3), which could not be imported "
            f"({type(exc).__name__}: {exc}); install it with `pip install kymatio`."
        ) from exc
