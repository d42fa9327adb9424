#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: the GPU tests, then the GPU figures of the benchmarks
# and of the dask example (one GPU per worker). Everything is printed and also written to
# ${OUT:-gpu_results}/<step>.txt. Every step has a time limit; the whole script stays under 8 minutes.
#
#     bash benchmarks/run_gpu.sh            # or: OUT=/some/folder bash benchmarks/run_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_results}"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE

# Nothing new is installed beyond the package and its test extra, and only when missing.
python -c "import skphase, pytest" 2>/dev/null || python -m pip install -q -e ".[tests]"

python - <<'PY' 2>&1 | tee "$out/environment.txt"
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device is visible: run this script on a GPU machine (the GPU tests would all be skipped)")
for i in range(torch.cuda.device_count()):
    props = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {props.name}, {props.total_memory / 2**30:.0f} GiB")
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

failed=()
step() {  # step NAME SECONDS COMMAND...: run COMMAND under a time limit, tee its output to $out/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name: $* (limit ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    local code=${PIPESTATUS[0]}
    echo "=== $name: exit $code after $((SECONDS - start)) s" | tee -a "$out/$name.txt"
    [ "$code" -eq 0 ] || failed+=("$name")
}

step gpu_tests 170 python -m pytest -m gpu -q -p no:cacheprovider
step bench_phase_collapse 60 python benchmarks/bench_phase_collapse.py --device cuda --steps 5 --threads 4
step bench_precision_bf16 60 python benchmarks/bench_precision.py --device cuda --precision bfloat16 --threads 4
step bench_precision_fp16 45 python benchmarks/bench_precision.py --device cuda --precision float16 --threads 4 \
    --no-features
step bench_diffeo 60 python benchmarks/bench_diffeo.py --device cuda --threads 4
if python -c "import distributed" 2>/dev/null; then
    step grid_search_on_dask 70 python examples/grid_search_on_dask.py --quick --workers 2
else
    echo "=== grid_search_on_dask: skipped (dask.distributed is not installed: pip install -e '.[distributed]')"
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (outputs in $out/)"
    exit 1
fi
echo "all steps passed (outputs in $out/)"
