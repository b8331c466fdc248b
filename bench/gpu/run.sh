#!/usr/bin/env bash
# Does an xgboost trial that Ray gives a GPU really train on cuda? Run on a machine with
# one NVIDIA GPU and tuner installed:  bash bench/gpu/run.sh [OUT_DIR]
# It runs the same 4-trial study with gpus_per_trial 1 and 0, samples nvidia-smi's
# compute processes meanwhile, and prints each trial's duration (bench/RESULTS.md).
set -u
out="${1:-${OUT:-/tmp/tuner-gpu}}"; mkdir -p "$out"
here="$(dirname "$0")"
db="sqlite:///$out/gpu.db"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader -lms 500 \
  >"$out/smi.log" 2>&1 &
smi=$!
for s in gpu cpu; do
  python3 -m tuner.cli run "$here/spec_$s.yaml" --storage "$db" --no-progress 2>&1 | tail -3
  python3 -m tuner.cli export "$s-check" --format json --storage "$db" -o "$out/$s.json"
done
kill "$smi"
python3 - "$out" <<'PY'
import json, sys
for s in ("gpu", "cpu"):
    for t in json.load(open(f"{sys.argv[1]}/{s}.json")):
        print(s, t["number"], t["state"], f"{t['duration_s']:.2f} s")
PY
echo "processes that held GPU memory:"; cut -d, -f2 "$out/smi.log" | sort | uniq -c
