#!/usr/bin/env bash
# The reproduction's runs, in the order they matter (README, "Reproducing the paper"):
#   1. Tables 2 and 3 under protocol=paper_code (what the authors' code ran),
#   2. Table 2 over seeds 1-5 under paper_code (every paper_code run logs both the 2022 split and the
#      clean split; the seeds measure the NaN rows' lottery, kdkge/split_2022.py),
#   3. the equal-budget comparison (sweeps/equal_budget.yaml) under paper_code, then the loss ablation
#      (paper_code with BCE, seeds 1-5),
#   4. Tables 6, 5 and 4 under paper_code,
#   5. the same under protocol=paper_text (the paper's text: BCE of Eq. 2, clean splits): Table 2 over seeds,
#      then the tables with the cheapest cells first (6, 5, 3, 4), its ablation (softmax CE) and equal budget last.
#   6. the 19 table sizes over seeds 1-5 under paper_code (sweeps/pareto_tables.yaml: the Pareto fronts'
#      seed error bars; the 100-size grid, sweeps/pareto.yaml, is a GPU's job).
# Every step is `make sweep`: finished runs are skipped, so a relaunch resumes where a crash stopped.
# Run it from a clone pinned at a commit, against the project's store, so that edits cannot break it:
#   git clone . /tmp/sweeper && cd /tmp/sweeper && make install &&
#   MLFLOW_TRACKING_URI=sqlite:////work/main/mlflow.db nohup bash scripts/reproduce.sh > sweeps.log 2>&1 &
# Give the clone its own venv (make install): a symlink to the checkout's .venv imports the checkout's
# hydra_plugins through its editable install, so edits there would reach the pinned sweep; and never swap
# a venv under a running sweep (Hydra reads its config files from the venv's paths at every job).
# JOBS (default 2) runs at a time, one torch thread each; after each sweep the run record under
# results/runs/ of the clone is exported again (make record), after the paper_code runs got their 2022
# row-group and NaN-lottery metrics from their checkpoints (python -m kdkge.backfill_2022; skips runs
# that have them); copy the record to your checkout and commit.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
STEPS=${STEPS:-"paper_code:table2 paper_code:table3 paper_code:table2_seeds paper_code:equal_budget
paper_code,bce:table2_seeds paper_code:table6 paper_code:table5 paper_code:table4
paper_text:table2_seeds paper_text:table2 paper_text:table6 paper_text:table5 paper_text:table3
paper_text:table4 paper_text,softmax_ce:table2_seeds paper_text:equal_budget
paper_code:pareto_tables"}
for step in $STEPS; do
    what=${step%%:*}; sweep=${step#*:}
    protocol=${what%%,*}; loss=""
    [ "$what" != "$protocol" ] && loss="loss=${what#*,}"
    echo "== $(date -u +%FT%TZ) protocol=$protocol $loss sweep=$sweep"
    make sweep SWEEP="$sweep" JOBS="$JOBS" ARGS="protocol=$protocol $loss progress=false ${EXTRA:-}"
    [ "$protocol" = paper_code ] && { .venv/bin/python -m kdkge.backfill_2022 || echo "warning: could not backfill the 2022 metrics"; }
    make record || echo "warning: could not export the run record"
done
echo "== $(date -u +%FT%TZ) done"
