#!/usr/bin/env bash
# OpenVINO's first runs on several image sizes, each side of the comparison starting from an
# empty conversion cache (the style cache copied in, so that only conversions differ): what a
# user with a folder of photographs of different sizes pays.  OLD and NEW are worktrees:
#   git worktree add /tmp/wt-old <commit>; git worktree add /tmp/wt-new <commit>
#   cd benchmarks && OLD=/tmp/wt-old NEW=/tmp/wt-new TAG=-x SIDES="old new" bash ab_openvino_sizes.sh
# Each run is bench_fixed_cost.py --args="--backend openvino" (a fresh `python -m urst_dask
# stylize -v`, under the CPU lock); results/fixed-cost-<content>${TAG}-<side>.json.
set -euo pipefail
: "${OLD:?OLD=path of a worktree}" "${NEW:?NEW=path of a worktree}"
TAG=${TAG:-} SIDES=${SIDES:-old new}
IMAGES=${IMAGES:-/tmp/urst-bench/cornell-3840x2160.jpg /tmp/urst-bench/cornell-2000x1400.jpg /tmp/urst-bench/cornell-4000x4000.png}
for side in $SIDES; do
  if [ "$side" = old ]; then path=$OLD; else path=$NEW; fi
  cache=$(mktemp -d)
  cp -r "${URST_DASK_CACHE:-$HOME/.cache/urst-dask}/styles" "$cache/" 2>/dev/null || true
  for img in $IMAGES; do
    echo "== $side $(basename "$img")"
    URST_DASK_CACHE=$cache PYTHONPATH=$path flock -x /tmp/urst-cpu.lock python bench_fixed_cost.py --content "$img" \
      --args="--backend openvino" --tag="$TAG-$side" | grep -E "compilation|^wall|^recorded"
  done
  rm -rf "$cache"
done
