#!/usr/bin/env bash
# One multi-GPU node: a Dask scheduler, one `dask worker` per GPU, then `urst-dask stylize`.
#
#   pipelines/multi_gpu_node.sh CONTENT STYLE OUT.zarr [more `urst-dask stylize` options]
#
# for example
#
#   URST_DASK_WEIGHTS=/data/weights pipelines/multi_gpu_node.sh scan.tif style.jpg out.zarr --precision float16
#
# Each worker sees one GPU (CUDA_VISIBLE_DEVICES=i, so its device is cuda:0), runs one task
# at a time (--nthreads 1) and advertises --resources GPU=1: urst-dask then sends every
# network task (style, statistics, windows) to GPU workers only.  See pipelines/multi_gpu.md.
#
# Environment (all optional):
#   NGPUS              GPUs to use (default: every GPU `nvidia-smi -L` lists)
#   PORT               scheduler port (default 8786); the dashboard, if bokeh is installed, is on 8787
#   WORKDIR            logs, scheduler file and worker scratch (default: a new temporary folder)
#   URST_DASK_WEIGHTS  weights folder, read by the workers (default: the user cache)
#   KEEP_CLUSTER=1     leave the cluster running after the run (stop it with the printed command)
#
# Every process started here is stopped when the script ends, also on error or Ctrl-C.
set -euo pipefail

if [ $# -lt 3 ]; then
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
content=$1 style=$2 out=$3
shift 3

if [ -n "${NGPUS:-}" ]; then
    ngpus=$NGPUS
else
    ngpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ "${ngpus:-0}" -lt 1 ]; then
    echo "multi_gpu_node.sh: no GPU found (nvidia-smi -L lists none); set NGPUS to override" >&2
    exit 2
fi

port=${PORT:-8786}
work=${WORKDIR:-$(mktemp -d -t urst-dask-cluster-XXXXXX)}
mkdir -p "$work"

# dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 to its worker.  Setting that variable at
# all freezes glibc's mmap threshold, so every large activation is mmap'd and faulted in
# afresh (a 1064-px wct16x window: 13.9 s instead of 7.6 s on a 2-core CPU).  A dask config
# file that removes the entry keeps glibc's default; urst-dask's own local cluster does the same.
mkdir -p "$work/dask-config"
cat >"$work/dask-config/urst-dask.yaml" <<'EOF'
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
EOF
export DASK_CONFIG="$work/dask-config"

pids=()
stop_cluster() {
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    trap stop_cluster EXIT
    trap 'exit 130' INT TERM
else  # said however the script ends (a failed run too): the processes are left running
    trap '[ ${#pids[@]} -gt 0 ] && echo "[multi_gpu_node] cluster left running; stop it with: kill ${pids[*]}" >&2' EXIT
fi

dask scheduler --host 127.0.0.1 --port "$port" --scheduler-file "$work/scheduler.json" \
    >"$work/scheduler.log" 2>&1 &
pids+=($!)
scheduler_pid=$!

for ((i = 0; i < ngpus; i++)); do
    CUDA_VISIBLE_DEVICES=$i dask worker --scheduler-file "$work/scheduler.json" --name "gpu$i" \
        --host 127.0.0.1 --nthreads 1 --resources GPU=1 --local-directory "$work/gpu$i" \
        >"$work/gpu$i.log" 2>&1 &
    pids+=($!)
done

# Wait (bounded) for the scheduler file and every worker.
address=$(python - "$work/scheduler.json" "$ngpus" "$scheduler_pid" <<'EOF'
import json, os, pathlib, sys, time
path, n, pid = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 120
while not path.exists():
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # it failed to start (the port taken...): no need to wait the 120 s
        sys.exit(f"the scheduler exited at its start (see {path.parent}/scheduler.log)")
    if time.monotonic() > deadline:
        sys.exit(f"no scheduler file {path} after 120 s")
    time.sleep(0.2)
from distributed import Client
with Client(scheduler_file=str(path), timeout="30s") as c:
    c.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
    print(json.loads(path.read_text())["address"])
EOF
) || { echo "multi_gpu_node.sh: the cluster did not start; logs in $work" >&2; exit 1; }
echo "[multi_gpu_node] scheduler $address, $ngpus GPU workers; logs in $work" >&2

urst-dask stylize "$content" "$style" -o "$out" --scheduler "$address" "$@"

