#!/usr/bin/env bash
# precision auto against float32 end to end on the 8-MP photograph, alternated, one painting
# where the bf16 probe passes (wave) and one where it does not (Starry Night).
# Run from benchmarks/: flock -x /tmp/urst-cpu.lock bash e2e_auto_precision.sh > results/e2e-auto-precision-<tag>.log
set -euo pipefail
content=${CONTENT:-/tmp/urst-bench/cornell-3840x2160.jpg}
styles=${STYLES:-"wave starry_night"}
out=${OUT:-/tmp/urst-bench/e2e-auto}
mkdir -p "$out"
grep -m1 "model name" /proc/cpuinfo; nproc; git -C .. rev-parse --short HEAD
for style in $styles; do
  for round in 1 2; do
    for prec in auto float32; do
      t0=$(date +%s.%N)
      urst-dask stylize "$content" "../../shared/images/style/$style.jpg" -o "$out/$style-$prec.zarr" --method wct16x \
        --backend openvino --precision "$prec" --overwrite -v 2>&1 | grep -E "precision auto|tile stage:|^  windows|wall time" || true
      echo "$style $prec round $round: $(echo "$(date +%s.%N) - $t0" | bc) s"
    done
  done
  python -c "
import sys; from urst_dask.io import store; from urst_dask.metrics.quality import psnr
a, b = (store.open_output('$out/$style-' + p + '.zarr').compute() for p in ('auto', 'float32'))
print('$style: PSNR of auto against float32 (uint8 picture):', round(psnr(a, b), 2), 'dB')"
done
