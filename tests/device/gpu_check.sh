#!/usr/bin/env bash
# The GPU checks, run once on a lent GPU machine (never by CI): the real CUDA tests of
# tests/integration/test_gpu.py and tests/unit/test_gpu_reports.py, then what a user sees there
# (the terminal reports of a real CUDA OOM and of one on a GPU another process holds, `trainwatch
# ps` during a run that holds GPU memory, `trainwatch doctor`).
# Usage there: bash tests/device/gpu_check.sh WHEEL OUTDIR   (WHEEL: trainwatch's wheel, built here)
set -u
wheel=$1 out=$2
export PYTHONUNBUFFERED=1
section() { printf '\n===== %s =====\n' "$*"; }

section machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
ls -l /proc/driver/nvidia/version /dev/nvidiactl 2>&1
python3 -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())'
python3 -c 'import pynvml as n; n.nvmlInit(); h = n.nvmlDeviceGetHandleByIndex(0); print(n.nvmlDeviceGetName(h), n.nvmlDeviceGetMemoryInfo(h).total)'

section install
python3 -m pip install -q --no-index --no-deps --no-compile "$wheel" || exit 3
# beside the interpreter pip installed into (a venv's python3 is a link: not resolved)
tw=$(python3 -c 'import sys, pathlib; print(pathlib.Path(sys.executable).with_name("trainwatch"))')
echo "trainwatch at $tw"; "$tw" --version

section "pytest: tests/integration/test_gpu.py and tests/unit/test_gpu_reports.py"
timeout 200 python3 -m pytest -p no:cacheprovider -q -rs -o addopts= \
    tests/integration/test_gpu.py tests/unit/test_gpu_reports.py 2>&1 | tee "$out/pytest.txt"

section "a real CUDA OOM under trainwatch run, as a user sees it"
timeout 120 "$tw" run --interval 0.2 --json "$out/oom.json" \
    python3 tests/scripts/gpu_failures.py oom > "$out/oom-stdout.txt" 2> "$out/oom-stderr.txt"
echo "exit $?"; tail -c 6000 "$out/oom-stderr.txt"

section "an OOM on a GPU another process holds, as a user sees it"
coproc HOG { python3 tests/scripts/gpu_failures.py hog; }
read -r line <&"${HOG[0]}"; echo "other process: $line (pid $HOG_PID)"
timeout 120 "$tw" run --interval 0.2 --json "$out/occupied.json" \
    python3 tests/scripts/gpu_failures.py ask > /dev/null 2> "$out/occupied-stderr.txt"
echo "exit $?"; exec {HOG[1]}>&-; wait "$HOG_PID"; tail -c 5000 "$out/occupied-stderr.txt"

section "trainwatch ps during a run that holds 1 GiB"
"$tw" run --interval 0.2 python3 tests/scripts/gpu_failures.py hold > /dev/null 2>&1 &
for _ in 1 2 3 4 5 6; do sleep 1; "$tw" ps; done; wait

section "trainwatch doctor"
timeout 120 "$tw" doctor; echo "exit $?"
timeout 120 "$tw" doctor --json > "$out/doctor.json"
