#!/usr/bin/env bash
# SIGKILL of one rank mid-collective must end the whole job, not hang it (issue #17, item 5):
# runs the MpiDeath test on two ranks, rank 1 kills itself, and checks that mpirun returns
# non-zero within 30 s and that no rank claims to have finished.
# usage: killed_rank.sh MPIEXEC DIST_MPI_TESTS
set -uo pipefail
mpiexec=$1 binary=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TANDEM_TEST_KILL_RANK=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s%N)
timeout 45 "$mpiexec" -np 2 --oversubscribe "$binary" --gtest_filter='MpiDeath.*' >"$log" 2>&1
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$log"
echo "killed_rank: mpirun exited with $rc after ${elapsed_ms} ms"
if [ "$rc" -eq 0 ]; then echo "FAIL: the job succeeded although rank 1 was killed"; exit 1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 45 s)"; exit 1; fi
if (( elapsed_ms >= 30000 )); then echo "FAIL: the job took ${elapsed_ms} ms to end (limit 30 s)"; exit 1; fi
if grep -q "finished every all_reduce" "$log"; then echo "FAIL: a rank finished without its peer"; exit 1; fi
echo "killed_rank: ok"
