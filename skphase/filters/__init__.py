"""Fixed filter banks, built by pure functions (no state, no sklearn)."""

from ._morlet import BLOCK_KINDS, block_filter_bank, gabor_2d, kernel_radius, morlet_2d

__all__ = ["BLOCK_KINDS", "block_filter_bank", "gabor_2d", "kernel_radius", "morlet_2d"]
from ._qshift import QSHIFT_A_H0, packet_filters_1d, packet_paths, qshift_filters  # noqa: E402
from ._packets import dtcwpt_packet_info, select_packets  # noqa: E402
__all__ += ["QSHIFT_A_H0", "packet_filters_1d", "packet_paths", "qshift_filters", "dtcwpt_packet_info", "select_packets"]
