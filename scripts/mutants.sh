#!/usr/bin/env bash
# Mutation testing of the shutdown-critical code (see .cargo/mutants.toml).
#
#   scripts/mutants.sh                      every file, all mutants (hours)
#   scripts/mutants.sh src/http/gate.rs     one file
#   SHARD=2/8 scripts/mutants.sh            one shard of the whole run
#   ITERATE=1 scripts/mutants.sh FILE       resume: skip the mutants the last
#                                           run in mutants.out/ already judged
#   IN_PLACE=1 scripts/mutants.sh FILE      mutate this tree itself, reusing
#                                           its target/ (a spare worktree only:
#                                           an interrupted run leaves a mutant)
#
# Results land in mutants.out/ (caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json); copy a finished shard's summary into
# sim/mutants/ to keep it. Survivors are explained in sim/MUTANTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--no-shuffle --test-workspace=true)
if [ -n "${IN_PLACE:-}" ]; then
  args+=(--in-place)
else
  args+=(--jobs 1)
fi
if [ -n "${ITERATE:-}" ]; then
  args+=(--iterate)
fi
if [ -n "${SHARD:-}" ]; then
  args+=(--shard "$SHARD")
fi
# The code Stop depends on (issue 13, item 4).
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/listener/accept.rs src/listener/mod.rs src/listener/rewind.rs src/listener/timers.rs
    src/node.rs src/work.rs src/waitgroup.rs src/http/gate.rs src/http/flight.rs src/http/server.rs
    src/jsonrpc/connection.rs src/jsonrpc/cluster.rs src/jsonrpc/handshake.rs src/state.rs)
fi
for f in "${files[@]}"; do args+=(--file "$f"); done
exec cargo mutants "${args[@]}"
