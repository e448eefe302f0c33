"""The kdkge sweeper plugin for Hydra (Hydra instantiates sweepers only from the ``hydra_plugins`` package).

* :mod:`.kdkge_sweeper` — the sweeper (``hydra/sweeper=kdkge``): plans with :mod:`kdkge.sweeps`,
  launches, prints and records the plan and the summary (:mod:`.reporting`;
  MLflow is read through :class:`kdkge.store.RunStore`);
* :mod:`.config` — its typed parameters (``hydra.sweeper.*``);
* :mod:`.sweeps_source` — the config source ``kdkge-sweeps://``: ``sweeps/*.yaml`` as the config
  group ``sweep``.  Hydra finds both plugins by scanning this package; nothing registers them.
"""
