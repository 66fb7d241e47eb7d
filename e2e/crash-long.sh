#!/usr/bin/env bash
# The long form of crates/saoma/tests/crash.rs: `saoma serve` killed with SIGKILL many more
# times under heavier load, on PostgreSQL and then on SQLite, with the same checks after
# the last restart (answered payments stored as answered, each wallet debited by its own
# payments only, the trial balance, one outbox event per payment, every webhook delivered
# and de-duplicable by its id).
#
#   e2e/crash-long.sh [ROUNDS]      # default 30 rounds of 8 tills, 1.5-3 s each before the kill
#
# SAOMA_CRASH_TILLS and SAOMA_CRASH_ROUND_MS change the tills and the round's time (each
# round runs between half and all of it). PostgreSQL is required, at 127.0.0.1:5432 or
# SAOMA_TEST_POSTGRES. About 13 minutes at the defaults on two cores, most of it the
# webhook backlog of some 10,000 payments draining after the last restart. CARGO=lcargo runs
# it under the shared machine's build lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAOMA_CRASH_ROUNDS="${1:-${SAOMA_CRASH_ROUNDS:-30}}"
export SAOMA_CRASH_TILLS="${SAOMA_CRASH_TILLS:-8}"
export SAOMA_CRASH_ROUND_MS="${SAOMA_CRASH_ROUND_MS:-3000}"
# The test skips PostgreSQL when it is not there, unless CI=true: the long form never skips.
export CI=true
echo "crash-long: ${SAOMA_CRASH_ROUNDS} rounds, ${SAOMA_CRASH_TILLS} tills, rounds of up to ${SAOMA_CRASH_ROUND_MS} ms"
# One database at a time: the two halves would otherwise share the cores and each other's load.
"${CARGO:-cargo}" test -p saoma --test crash -- --test-threads=1 --nocapture
