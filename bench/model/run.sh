#!/usr/bin/env bash
# Side-by-side CPU benchmark of polo's model (GoMLX, pure-Go backend) and the same architecture in
# PyTorch (OpenBLAS), 2 threads each, on the engine notes' reference shape (B=16, T=128, 4 layers,
# d=256, 4 heads, SwiGLU MLP 1024, vocab 256). Prints seconds per op and the ratio torch/polo
# (> 1 means polo is faster).
#
# The machine is shared, so the two sides run in alternating rounds and each op reports its best
# round (the least disturbed one); every round is printed too.
#
# Usage: bench/model/run.sh [iterations per round] [rounds]   (installs python3-torch if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5}
R=${2:-3}

# Debian's python3-torch lives in the system interpreter (not a pyenv/venv one).
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import torch" 2>/dev/null || ! ls /usr/lib/*/libopenblas.so.0 >/dev/null 2>&1; then
  if command -v sudo >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  # Without libopenblas0-pthread Debian's torch falls back to a reference BLAS (10x slower).
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi

export GOEXPERIMENT=simd GOMAXPROCS=2
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "# go: $(go version | cut -d' ' -f3), backend ${GOMLX_BACKEND:-go}; torch: $("$PY" -c "import torch; print(torch.__version__)")"

go test -c -o /tmp/polo-model-bench.test ./model/
gobench=""; pyout=""
for r in $(seq "$R"); do
  g=$(cd model && /tmp/polo-model-bench.test -test.run '^$' -test.bench 'TrainStep|Forward|DecodeStep' -test.benchtime "${N}x")
  p=$("$PY" bench/model/torch_bench.py "$N")
  echo "$g" | awk -v r="$r" '/^Benchmark/ { printf "# round %s polo  %s %.4f s\n", r, $1, $3 / 1e9 }'
  echo "$p" | awk -v r="$r" '$1 != "params" { printf "# round %s torch %s %.4f s\n", r, $1, $2 }'
  gobench="$gobench"$'\n'"$g"; pyout="$pyout"$'\n'"$p"
done
gosec() { echo "$gobench" | awk -v b="Benchmark$1-" 'index($1, b) == 1 { v = $3 / 1e9; if (m == "" || v < m) m = v } END { printf "%.4f", m }'; }
pysec() { echo "$pyout" | awk -v k="$1" '$1 == k { if (m == "" || $2 < m) m = $2 } END { printf "%.4f", m }'; }

printf "%-12s %10s %10s %8s\n" op polo_s torch_s torch/polo
for pair in "train_step TrainStep" "forward Forward" "decode_step DecodeStep"; do
  set -- $pair
  g=$(gosec "$2"); p=$(pysec "$1")
  printf "%-12s %10s %10s %8.2f\n" "$1" "$g" "$p" "$(echo "$p $g" | awk '{ print $1 / $2 }')"
done
echo "# torch $(echo "$pyout" | grep -m1 params)"
