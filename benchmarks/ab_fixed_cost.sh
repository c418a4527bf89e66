#!/usr/bin/env bash
# The fixed cost of two versions of the code, alternated in one sitting (this machine is noisy:
# compare only figures taken side by side).  OLD is a worktree of the other commit:
#   git worktree add /tmp/wt-old <commit>
#   cd benchmarks && OLD=/tmp/wt-old TAG=-early ROUNDS=3 ARGS="--backend openvino" bash ab_fixed_cost.sh
# CONTENT (default: bench_fixed_cost.py's 3840 x 2160 JPEG) is the image to stylize.
# NEW (default: this checkout) may be a worktree too, so that editing here cannot change a run.
# Each run is bench_fixed_cost.py (a fresh `python -m urst_dask stylize ... -v`), under the CPU lock;
# results/fixed-cost-<content>${TAG}-{old,new}-<round>.json record the code each one imported.
set -euo pipefail
: "${OLD:?OLD=path of a worktree of the commit to compare against}"
TAG=${TAG:-} ROUNDS=${ROUNDS:-3} ARGS=${ARGS:-} CONDITIONS=${CONDITIONS:-} CONTENT=${CONTENT:-}
for round in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    if [ "$side" = old ]; then path=$OLD; else path=${NEW:-}; fi
    echo "== round $round: $side"
    PYTHONPATH=$path flock -x /tmp/urst-cpu.lock python bench_fixed_cost.py --args="$ARGS" ${CONTENT:+--content "$CONTENT"} \
      --tag="$TAG-$side-$round" --conditions="$CONDITIONS" | grep -E "^wall|^steal|^recorded"
  done
done
