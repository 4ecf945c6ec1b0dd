#!/usr/bin/env bash
# A runner in any language: print events as JSON Lines and pipe them to `ledger append -`.
# One pipe is one atomic batch; re-running the script appends nothing new, because ids
# are derived from the events' content.
# Usage: LEDGER_PATH=results.ledger bash examples/shell_runner.sh
set -euo pipefail
LEDGER=${LEDGER:-ledger}
study=${STUDY:-shell-sweep}
{
  printf '{"type":"study_created","study":"%s","objectives":[{"metric":"density","direction":"max"}]}\n' "$study"
  for n in 1000 2000 4000; do
    case="n=$n"
    printf '{"type":"case_created","study":"%s","case":"%s","params":{"n":%d}}\n' "$study" "$case" "$n"
    printf '{"type":"run_started","study":"%s","case":"%s","run":"%s/1"}\n' "$study" "$case" "$case"
    # the "experiment": count the primes up to n
    primes=$(awk -v n="$n" 'BEGIN { c = 0; for (i = 2; i <= n; i++) { p = 1; for (j = 2; j * j <= i; j++) if (i % j == 0) { p = 0; break } c += p } print c }')
    density=$(awk -v p="$primes" -v n="$n" 'BEGIN { printf "%.6f", p / n }')
    printf '{"type":"metrics_recorded","study":"%s","run":"%s/1","values":{"primes":%d,"density":%s}}\n' "$study" "$case" "$primes" "$density"
    printf '{"type":"run_finished","study":"%s","run":"%s/1","status":"completed"}\n' "$study" "$case"
  done
} | "$LEDGER" append -
