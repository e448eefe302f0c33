"""The kdkge sweeper plugin (``hydra/sweeper=kdkge``, the default of ``conf/train.yaml``).

Hydra only instantiates sweepers defined under ``hydra_plugins``; the logic lives in
:mod:`kdkge.sweeps` (aliases such as ``dim=range``, sweep files, planning, skip-finished,
stacking, dry run, summary).
"""

from kdkge.sweeps import KdkgeSweeperBase


class KdkgeSweeper(KdkgeSweeperBase):
    """See :class:`kdkge.sweeps.KdkgeSweeperBase`."""
