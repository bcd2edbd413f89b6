#!/bin/bash
# bench_lab.py side by side: another tree's harness (default /work/main) and this one's,
# alternately, with this tree's bench script. Prints each invocation's medians.
# Usage: benchmarks/bench_lab_side_by_side.sh [ROUNDS=3] [RUNS=30] [GAP=0] [BASE=/work/main]
ROUNDS=${1:-3}; RUNS=${2:-30}; GAP=${3:-0}; BASE=${4:-/work/main}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=$HERE/.venv/bin/python
for r in $(seq "$ROUNDS"); do
  for tree in "$BASE" "$HERE"; do
    out=$(cd "$tree" && PYTHONPATH=$tree $PY "$HERE/benchmarks/bench_lab.py" --runs "$RUNS" --gap "$GAP" 2>/dev/null)
    echo "$tree $(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("up", d["up"]["median_ms"], "p90", d["up"]["p90_ms"], "down", d["down"]["median_ms"], "first_ping", d["first_ping_ms"]["median_ms"], "lost", d["first_ping_lost"])')"
  done
done
