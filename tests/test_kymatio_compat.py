import subprocess
import sys

import numpy as np
import pytest
import scipy.special

from skphase.utils._kymatio import _sph_harm, import_kymatio, patch_scipy_for_kymatio


@pytest.mark.skipif(not hasattr(scipy.special, "sph_harm_y"), reason="SciPy < 1.15 has no sph_harm_y")
def test_shim_matches_the_closed_form_spherical_harmonics():
    rng = np.random.default_rng(0)
    azimuth, polar = rng.uniform(0, 2 * np.pi, 50), rng.uniform(0, np.pi, 50)
    # Closed forms: Y_1^1 = -1/2 sqrt(3 / (2 pi)) sin(polar) e^{i azimuth}, Y_2^0 = 1/4 sqrt(5 / pi) (3 cos^2 - 1).
    expected_11 = -0.5 * np.sqrt(3 / (2 * np.pi)) * np.sin(polar) * np.exp(1j * azimuth)
    expected_20 = 0.25 * np.sqrt(5 / np.pi) * (3 * np.cos(polar) ** 2 - 1)
    np.testing.assert_allclose(_sph_harm(1, 1, azimuth, polar), expected_11, atol=1e-12)
    np.testing.assert_allclose(_sph_harm(0, 2, azimuth, polar), expected_20, atol=1e-12)


_FILTERS = (
    "import numpy as np, sys\n"
    "kymatio = import_kymatio('kymatio.scattering3d.filter_bank')\n"
    "f = kymatio.solid_harmonic_filter_bank(8, 8, 8, 1, 2, 1.0)\n"
    "np.save(sys.argv[1], np.concatenate([np.ravel(np.asarray(a)) for row in f for a in row]))\n"
)


@pytest.mark.skipif(not hasattr(scipy.special, "sph_harm_y"), reason="SciPy < 1.15 has no sph_harm_y")
def test_kymatio_imports_when_scipy_lacks_sph_harm(tmp_path):
    # A fresh interpreter whose SciPy has no sph_harm (as SciPy >= 1.17): the shim lets kymatio import,
    # and its 3-D solid-harmonic filters (the only user of sph_harm) equal those built with SciPy's own.
    shimmed = (
        "import scipy.special\n"
        "if hasattr(scipy.special, 'sph_harm'): del scipy.special.sph_harm\n"
        "from skphase.utils._kymatio import import_kymatio\n" + _FILTERS
    )
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", shimmed, str(tmp_path / "shim.npy")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    filters = np.load(tmp_path / "shim.npy")
    assert np.isfinite(filters).all() and np.abs(filters).max() > 0
    if hasattr(scipy.special, "sph_harm") and scipy.special.sph_harm is not _sph_harm:
        native = "from importlib import import_module as import_kymatio\n" + _FILTERS
        run = subprocess.run([sys.executable, "-W", "ignore", "-c", native, str(tmp_path / "native.npy")], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        np.testing.assert_allclose(filters, np.load(tmp_path / "native.npy"), rtol=1e-10, atol=1e-12)


def test_no_change_when_scipy_has_its_own_sph_harm(monkeypatch):
    own = object()
    monkeypatch.setattr(scipy.special, "sph_harm", own, raising=False)
    assert patch_scipy_for_kymatio() is False
    assert scipy.special.sph_harm is own


def test_missing_kymatio_gives_an_install_hint():
    with pytest.raises(ImportError, match="pip install kymatio"):
        import_kymatio("kymatio.no_such_module")
