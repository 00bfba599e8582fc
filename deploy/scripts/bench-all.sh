#!/usr/bin/env bash
# Runs every vmgrid benchmark once and collects their JSON result lines in build/bench/.
# Benchmarks on shared data (BtrPlace, PlanetLab) run when ../shared/data is beside the repo.
set -uo pipefail
cd "$(dirname "$0")/../.."
BENCH=.venv/bin/vmgrid-bench
DATA=${VMGRID_DATA:-../shared/data}
OUT=build/bench
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
failed=0

run() {
    local name=$1; shift
    echo "== $name: vmgrid-bench $*" >&2
    if line=$("$BENCH" "$@" --json 2>>"$OUT/$name.log" | tail -n 1) && [ -n "$line" ]; then
        echo "$line" | tee -a "$RESULTS"
    else
        echo "!! $name failed; see $OUT/$name.log" >&2
        failed=1
    fi
}

run ingest ingest --agents 2000 --vms-per-agent 20 --period 1 --seconds 30
run agent agent --vms 50 --seconds 30
run solver-issue-100 solver tests/data/btrplace/std-perf-issue-100.json.gz --timeout 25
run solver-generate solver --generate nodes=1000,vms=10000,seed=1 --timeout 10
run grid grid --clusters 100 --nodes-per-cluster 100 --vms-per-node 10
run makespan makespan
run reaction reaction --hosts 3
run failover failover --hosts 3
if [ -d "$DATA/btrplace" ]; then
    for f in "$DATA"/btrplace/*.json.gz; do
        run "solver-$(basename "$f" .json.gz)" solver "$f" --timeout 25
    done
fi
if [ -d "$DATA/planetlab" ]; then
    for day in "$DATA"/planetlab/2011*; do
        run "replay-$(basename "$day")" replay --trace "$day" --policy vmgrid
    done
fi
echo "results: $RESULTS" >&2
exit $failed
