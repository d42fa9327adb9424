"""Fixed filter banks, built by pure functions (no state, no sklearn)."""

__all__ = []
from ._qshift import QSHIFT_A_H0, packet_filters_1d, packet_paths, qshift_filters  # noqa: E402
from ._packets import dtcwpt_packet_info, select_packets  # noqa: E402
__all__ += ["QSHIFT_A_H0", "packet_filters_1d", "packet_paths", "qshift_filters", "dtcwpt_packet_info", "select_packets"]
