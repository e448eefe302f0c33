"""Hydra plugins of kdkge (Hydra instantiates sweepers only from the ``hydra_plugins`` package)."""
