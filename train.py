"""Train and evaluate one knowledge graph embedding model: ``python train.py --help``.

A thin Hydra wrapper over :func:`kdkge.app.train` (config in ``conf/``, run recorded in MLflow).
Returns the test MRR, so that Hydra sweepers can use it.
"""

import hydra
from omegaconf import DictConfig

from kdkge import app  # also registers the config schema (kdkge/config.py)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return app.main(cfg)


if __name__ == "__main__":
    app.one_line_hydra_errors()  # a typo or a value of the wrong type: one line, exit 1
    main()
