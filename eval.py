"""Evaluate a trained model again: ``python eval.py run_id=<MLflow run id>`` or ``ckpt_path=<file>``.

A thin Hydra wrapper over :func:`kdkge.eval_app.main` (config in ``conf/eval.yaml``; ``--help``).
Prints filtered MRR and Hits@1/3/10 under every tie policy, calibration, and for paper_code
checkpoints the authors' 2022 test metrics; ``log=true`` logs them to the run.
"""

import hydra
from omegaconf import DictConfig

from kdkge import eval_app


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return eval_app.main(cfg)


if __name__ == "__main__":
    main()
