#!/usr/bin/env bash
# Runs the vmgrid benchmarks and collects their JSON result lines in build/bench/results.jsonl,
# then regenerates the README's results table and docs/benchmarks.md from it.
#   deploy/scripts/bench-all.sh              every benchmark; results.jsonl starts afresh
#   deploy/scripts/bench-all.sh NAME...      only these (shell patterns, e.g. 'replay-*' agent);
#                                            their lines replace the same commands' old lines
# Benchmarks on shared data (BtrPlace, ROADEF 2012, PlanetLab) run when ../shared/data is beside the repo.
set -uo pipefail
cd "$(dirname "$0")/../.."
BENCH=.venv/bin/vmgrid-bench
DATA=${VMGRID_DATA:-../shared/data}
OUT=build/bench
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
NEW="$OUT/new.jsonl"
: > "$NEW"
if [ $# -eq 0 ]; then
    : > "$RESULTS"
fi
failed=0

selected() {
    local name=$1 pattern
    [ ${#FILTERS[@]} -eq 0 ] && return 0
    for pattern in "${FILTERS[@]}"; do
        # shellcheck disable=SC2053
        [[ $name == $pattern ]] && return 0
    done
    return 1
}

run() {
    local name=$1; shift
    selected "$name" || return 0
    echo "== $name: vmgrid-bench $*" >&2
    if line=$("$BENCH" "$@" --json 2>>"$OUT/$name.log" | tail -n 1) && [ -n "$line" ]; then
        echo "$line" | tee -a "$NEW"
    else
        echo "!! $name failed; see $OUT/$name.log" >&2
        failed=1
    fi
}

FILTERS=("$@")
run ingest ingest --agents 2000 --vms-per-agent 20 --period 1 --seconds 30
run ingest-path ingest-path --agents 2000 --vms-per-agent 20
run agent agent --vms 50 --seconds 30
run history history --nodes 100 --vms-per-node 20 --minutes 10
run solver-issue-100 solver tests/data/btrplace/std-perf-issue-100.json.gz --timeout 25
run solver-generate solver --generate nodes=1000,vms=10000,seed=1 --timeout 10
run grid grid --clusters 100 --nodes-per-cluster 100 --vms-per-node 10
run makespan makespan
run n-plus-one n-plus-one --nodes 200 --vms-per-node 10 --spread-pairs
run reaction reaction --hosts 3
run failover failover --hosts 3
run restart-memory restart-memory --hosts 3
run fuzz fuzz --seconds 120
run demo-stability demo-stability --minutes 30
if [ -d "$DATA/btrplace" ]; then
    for f in "$DATA"/btrplace/*.json.gz; do
        run "solver-$(basename "$f" .json.gz)" solver "$f" --timeout 25
    done
fi
if [ -d "$DATA/roadef2012" ]; then
    for f in "$DATA"/roadef2012/model_*.txt.gz; do
        i=$(basename "$f" .txt.gz); i=${i#model_}
        run "roadef-$i" roadef "$f" "$DATA/roadef2012/assignment_$i.txt.gz" --timeout 300 \
            --out "$OUT/roadef_$i.txt"
    done
fi
if [ -d "$DATA/planetlab" ]; then
    for day in "$DATA"/planetlab/2011*; do
        run "replay-$(basename "$day")" replay --trace "$day" --policy vmgrid
    done
fi
if [ -s "$NEW" ] || [ -s "$RESULTS" ]; then
    .venv/bin/python -m vmgrid.bench.bench_report --results "$RESULTS" --merge "$NEW" \
        --docs docs --readme README.md || failed=1
fi
echo "results: $RESULTS" >&2
exit $failed
