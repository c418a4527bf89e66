#!/usr/bin/env bash
# urst-dask video with --precision auto against float32 (eager, the default backend, or EXTRA="--backend openvino") on a short
# sequence: the 8-MP photograph, shifted 12 px per frame, with The Scream.
# Frames: python -c "..." writes /tmp/urst-bench/video-in/f000..f003.png (see results/e2e-video-auto-precision-*.log)
# Run from benchmarks/: flock -x /tmp/urst-cpu.lock bash e2e_video_auto_precision.sh > results/e2e-video-auto-precision-<tag>.log
set -euo pipefail
src=${SRC:-/tmp/urst-bench/video-in}
style=${STYLE:-../../shared/images/style/the_scream.jpg}
out=${OUT:-/tmp/urst-bench/video-out}
mkdir -p "$out"
grep -m1 "model name" /proc/cpuinfo; nproc; git -C .. rev-parse --short HEAD
for prec in auto float32; do
  rm -rf "$out/$prec" "$out/$prec.video-state"
  t0=$(date +%s.%N)
  urst-dask video "$src" "$style" -o "$out/$prec" --method wct16x --precision "$prec" ${EXTRA:-} 2>&1 | grep -E "precision auto" || true
  echo "$prec: $(echo "$(date +%s.%N) - $t0" | bc) s"
done
python -c "
import glob, numpy as np; from PIL import Image; from urst_dask.metrics.quality import psnr
for f in sorted(glob.glob('$out/auto/*.png')):
    a, b = np.asarray(Image.open(f)), np.asarray(Image.open(f.replace('/auto/', '/float32/')))
    print(f.split('/')[-1], 'auto against float32:', round(psnr(a, b), 2), 'dB')"
