"""Fixed filter banks, built by pure functions (no state, no scikit-learn)."""

from ._morlet import BLOCK_KINDS, block_filter_bank, gabor_2d, kernel_radius, morlet_2d
from ._packets import dtcwpt_packet_info, select_packets
from ._qshift import QSHIFT_A_H0, packet_filters_1d, packet_paths, qshift_filters

__all__ = [
    "BLOCK_KINDS", "QSHIFT_A_H0", "block_filter_bank", "dtcwpt_packet_info", "gabor_2d", "kernel_radius",
    "morlet_2d", "packet_filters_1d", "packet_paths", "qshift_filters", "select_packets",
]
