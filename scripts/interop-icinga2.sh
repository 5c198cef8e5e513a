#!/usr/bin/env bash
# A real Icinga 2 (the Debian package) and quiesce as the two endpoints of
# one zone, over TLS on loopback.
#
# Usage: bash scripts/interop-icinga2.sh [QUIESCE_BINARY]
#   (default: builds target/release/quiesce)
#
# Everything happens in a fresh temporary directory: Icinga gets its own
# config root and data, log, cache, spool and run directories through
# -D constants, so /etc/icinga2 and /var/lib/icinga2 are never touched.
# Two rounds, one per CA:
#   1. Icinga's CA (icinga2 pki new-ca) signs both certificates; quiesce
#      makes its key and CSR with `quiesce pki new-cert --key --csr`, and
#      only quiesce dials (Icinga's Endpoint "quiesce" has no host).
#      Check results flow both ways, and quiesce is restarted with SIGTERM
#      while Icinga accepts a result it must replay.
#   2. quiesce's CA (quiesce pki new-ca) signs both certificates; Icinga
#      makes its key and CSR with `icinga2 pki new-cert`, and only Icinga
#      dials (quiesce's endpoint points at a closed port).
# Prints PASS or FAIL per check; exits 1 if any check failed. Both
# processes are stopped on exit; the directory is kept when a check failed.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v icinga2 >/dev/null 2>&1; then
    echo "icinga2 is missing: installing the Debian package"
    apt-get install -y icinga2 >/dev/null || { echo "FAIL: cannot install icinga2"; exit 1; }
fi
if [ $# -ge 1 ]; then
    QBIN=$(realpath "$1")
else
    (cd "$ROOT" && cargo build --release -p quiesce --bin quiesce) || { echo "FAIL: cargo build"; exit 1; }
    QBIN=$ROOT/target/release/quiesce
fi
ICINGA_VERSION=$(icinga2 --version | head -1)

T=$(mktemp -d /tmp/interop-icinga2.XXXXXX)
FAILS=0
ICINGA_PID=
QUIESCE_PID=

cleanup() {
    [ -n "$QUIESCE_PID" ] && kill "$QUIESCE_PID" 2>/dev/null && wait "$QUIESCE_PID" 2>/dev/null
    if [ -n "$ICINGA_PID" ]; then
        kill -TERM -- "-$ICINGA_PID" 2>/dev/null && wait "$ICINGA_PID" 2>/dev/null
        sleep 1
        kill -KILL -- "-$ICINGA_PID" 2>/dev/null
    fi
    if [ "$FAILS" -eq 0 ]; then
        rm -rf "$T"
    else
        echo "logs kept in $T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
# eventually SECONDS COMMAND...: the command succeeds within SECONDS.
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do
        "$@" && return 0
        sleep 0.5
    done
    "$@"
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Icinga, as root: the CLI and the daemon drop to RunAsUser, which is root
# here so that they may use the temporary directory.
icinga_defines() {
    local dir=$T/$ROUND/icinga
    DEFINES=(-DConfigDir="$dir/etc" -DDataDir="$dir/lib" -DLogDir="$dir/log"
        -DCacheDir="$dir/cache" -DSpoolDir="$dir/spool" -DInitRunDir="$dir/run"
        -DRunAsUser=root -DRunAsGroup=root)
}
icinga() {
    icinga_defines
    icinga2 "$@" "${DEFINES[@]}"
}

# new_round NAME: fresh directories and ports for one round.
new_round() {
    ROUND=$1
    I=$T/$ROUND/icinga
    Q=$T/$ROUND/quiesce
    mkdir -p "$I"/{etc,lib/certs,log,cache,spool,run} "$Q/certs"
    IPORT=$(free_port)
    QPORT=$(free_port)
    ICURL=(curl -sS --max-time 10 --cacert "$I/lib/certs/ca.crt" --resolve "icinga:$IPORT:127.0.0.1"
        -u root:icinga -H 'Accept: application/json')
    QCURL=(curl -sS --max-time 10 --cacert "$Q/certs/ca.crt" --resolve "quiesce:$QPORT:127.0.0.1"
        -u root:icinga -H 'Accept: application/json')
    echo "== round $ROUND: Icinga on 127.0.0.1:$IPORT, quiesce on 127.0.0.1:$QPORT"
}

# write_icinga_config QUIESCE_ENDPOINT_BODY
write_icinga_config() {
    cat >"$I/etc/icinga2.conf" <<EOF
const NodeName = "icinga"
const ZoneName = "master"
include <itl>

object ApiListener "api" {
  bind_host = "127.0.0.1"
  bind_port = $IPORT
  accept_commands = true
  accept_config = true
}
object ApiUser "root" {
  password = "icinga"
  permissions = [ "*" ]
}
object Endpoint "icinga" { }
object Endpoint "quiesce" { $1 }
object Zone "master" { endpoints = [ "icinga", "quiesce" ] }

object Host "interop-h1" {
  check_command = "dummy"
  enable_active_checks = false
  enable_passive_checks = true
}
EOF
}

start_icinga() {
    icinga_defines
    # Not through a shell function, whose subshell would be what $! names:
    # the umbrella process must get the SIGTERM. Its own process group lets
    # the cleanup end its workers too, whatever happened.
    setsid icinga2 daemon -c "$I/etc/icinga2.conf" -x notice "${DEFINES[@]}" >>"$I/daemon.log" 2>&1 &
    ICINGA_PID=$!
    eventually 60 icinga_api_up
}
icinga_api_up() { "${ICURL[@]}" -o /dev/null "https://icinga:$IPORT/v1/status/ApiListener" 2>/dev/null; }

# start_quiesce ENDPOINT_PORT
start_quiesce() {
    NO_COLOR=1 RUST_LOG=${QUIESCE_LOG:-debug} "$QBIN" serve --node-name quiesce --listen "127.0.0.1:$QPORT" \
        --state-dir "$Q" --endpoint "icinga@127.0.0.1:$1" --api-user root:icinga >>"$Q/serve.log" 2>&1 &
    QUIESCE_PID=$!
    eventually 30 quiesce_api_up
}
quiesce_api_up() { "${QCURL[@]}" -o /dev/null "https://quiesce:$QPORT/v1/status" 2>/dev/null; }

stop_quiesce() {
    kill -TERM "$QUIESCE_PID"
    wait "$QUIESCE_PID"
    local rc=$?
    QUIESCE_PID=
    return $rc
}
stop_icinga() {
    local pid=$ICINGA_PID
    ICINGA_PID=
    kill -TERM -- "-$pid" 2>/dev/null
    # Bounded: an Icinga that does not stop on SIGTERM is a failed check,
    # killed, never a script that hangs.
    if ! eventually 30 eval "! kill -0 $pid 2>/dev/null"; then
        echo "   Icinga (pid $pid) did not exit within 30 s of SIGTERM; killing it" >&2
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    wait "$pid" 2>/dev/null
    # Nothing of Icinga's is left in its process group.
    eventually 10 eval "! pgrep -g $pid >/dev/null"
}

create_host_on_quiesce() {
    "${QCURL[@]}" -X PUT "https://quiesce:$QPORT/v1/objects/hosts/interop-h1" \
        -d '{"attrs":{"check_command":"dummy","enable_active_checks":false}}' | grep -q '"code":200'
}

# submit CURL_ARRAY_NAME URL OUTPUT: a passive DOWN result for interop-h1.
submit() {
    local -n c=$1
    "${c[@]}" -X POST "$2/v1/actions/process-check-result" \
        -d "{\"type\":\"Host\",\"filter\":\"host.name==\\\"interop-h1\\\"\",\"exit_status\":1,\"plugin_output\":\"$3\"}" \
        | grep -q '"code":200'
}
# output_is CURL_ARRAY_NAME URL OUTPUT: interop-h1's last result has OUTPUT.
output_is() {
    local -n c=$1
    "${c[@]}" "$2/v1/objects/hosts/interop-h1?attrs=last_check_result" 2>/dev/null \
        | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]["attrs"]["last_check_result"]; sys.exit(0 if r and r["output"]==sys.argv[1] else 1)' "$3" 2>/dev/null
}
# state_is CURL_ARRAY_NAME URL STATE: interop-h1's state (0 UP, 1 DOWN).
state_is() {
    local -n c=$1
    "${c[@]}" "$2/v1/objects/hosts/interop-h1?attrs=state" 2>/dev/null \
        | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["results"][0]["attrs"]["state"]==int(sys.argv[1]) else 1)' "$3" 2>/dev/null
}
icinga_sees_quiesce_connected() {
    "${ICURL[@]}" "https://icinga:$IPORT/v1/objects/endpoints/quiesce?attrs=connected" 2>/dev/null \
        | grep -q '"connected":true'
}
icinga_last_received() {
    "${ICURL[@]}" "https://icinga:$IPORT/v1/objects/endpoints/quiesce?attrs=last_message_received" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["attrs"]["last_message_received"])'
}
log_has() { grep -q -- "$2" "$1"; }
count_in() { grep -c -- "$2" "$1"; }

IURL() { echo "https://icinga:$IPORT"; }
QURL() { echo "https://quiesce:$QPORT"; }

echo "$ICINGA_VERSION; quiesce $QBIN"

# ---------------------------------------------------------------- round 1
new_round icinga-ca
icinga pki new-ca >"$I/pki.log" 2>&1
icinga pki new-cert --cn icinga --key "$I/lib/certs/icinga.key" --csr "$I/icinga.csr" >>"$I/pki.log" 2>&1
icinga pki sign-csr --csr "$I/icinga.csr" --cert "$I/lib/certs/icinga.crt" >>"$I/pki.log" 2>&1
cp "$I/lib/ca/ca.crt" "$I/lib/certs/ca.crt"
"$QBIN" pki new-cert --cn quiesce --key "$Q/certs/quiesce.key" --csr "$Q/quiesce.csr" >"$Q/pki.log" 2>&1
icinga pki sign-csr --csr "$Q/quiesce.csr" --cert "$Q/certs/quiesce.crt" >>"$I/pki.log" 2>&1
cp "$I/lib/ca/ca.crt" "$Q/certs/ca.crt"
check "icinga2 pki signs the CSR quiesce made (icinga2 pki verify)" \
    eval 'icinga pki verify --cn quiesce --cert "$Q/certs/quiesce.crt" --cacert "$I/lib/ca/ca.crt" >>"$I/pki.log" 2>&1'

write_icinga_config ""
check "Icinga validates its configuration" eval 'icinga daemon -C -c "$I/etc/icinga2.conf" >"$I/validate.log" 2>&1'
check "Icinga starts and answers on its API" start_icinga
check "quiesce starts with the certificate Icinga's CA signed (Icinga's RSA key for the CA)" start_quiesce "$IPORT"
check "quiesce dials Icinga; Icinga accepts quiesce's certificate (endpoint 'quiesce' connected)" \
    eventually 30 icinga_sees_quiesce_connected
check "quiesce accepts Icinga's certificate (identity 'icinga' is an endpoint)" \
    eventually 5 log_has "$Q/serve.log" "New JSON-RPC client for identity 'icinga' (Endpoint)"
check "Icinga logs the connection as outgoing from quiesce's side" \
    log_has "$I/daemon.log" "New client connection for identity 'quiesce' from"
# Icinga 2.13 sends its Hello only on connections it makes (round 2).
check "Icinga receives quiesce's Hello" \
    eventually 10 log_has "$I/daemon.log" "Received 'icinga::Hello' message from identity 'quiesce'"
check "quiesce creates interop-h1 through its API" create_host_on_quiesce

echo "   (waiting 25 s for heartbeats both ways)"
before=$(icinga_last_received)
sleep 25
after=$(icinga_last_received)
check "quiesce's heartbeats reach Icinga (last_message_received moves without other traffic)" \
    python3 -c "import sys; sys.exit(0 if $after > $before else 1)"
check "Icinga's heartbeats reach quiesce" log_has "$Q/serve.log" "Received 'event::Heartbeat' message from identity 'icinga'"

check "a result submitted to Icinga's API is accepted" submit ICURL "$(IURL)" "from-icinga-1"
check "... and arrives in quiesce's store" eventually 15 output_is QCURL "$(QURL)" "from-icinga-1"
check "... with the host DOWN in quiesce, as in Icinga" \
    eval 'state_is QCURL "$(QURL)" 1 && state_is ICURL "$(IURL)" 1'
check "a result submitted to quiesce's API is accepted" submit QCURL "$(QURL)" "from-quiesce-1"
check "... and arrives in Icinga" eventually 15 output_is ICURL "$(IURL)" "from-quiesce-1"
check "... with the host DOWN in Icinga, as in quiesce" \
    eval 'state_is ICURL "$(IURL)" 1 && state_is QCURL "$(QURL)" 1'

echo "   (waiting 6 s for log positions to be acknowledged)"
sleep 6
check "SIGTERM stops quiesce with exit code 0" stop_quiesce
check "Icinga sees quiesce disconnected" eventually 15 eval '! icinga_sees_quiesce_connected'
check "while quiesce is down, a result submitted to Icinga is accepted" submit ICURL "$(IURL)" "while-down"
check "quiesce's state file holds the results it had before the SIGTERM" \
    eval 'grep -q from-quiesce-1 "$Q/state.json" && grep -q "from-icinga-1\|from-quiesce-1" "$Q/state.json"'
check "quiesce starts again" start_quiesce "$IPORT"
check "Icinga replays the result it took while quiesce was down" \
    eventually 30 output_is QCURL "$(QURL)" "while-down"
check "after the restart, a result submitted to quiesce arrives in Icinga" \
    eval 'submit QCURL "$(QURL)" "from-quiesce-2" && eventually 15 output_is ICURL "$(IURL)" "from-quiesce-2"'
check "after the restart, a result submitted to Icinga arrives in quiesce" \
    eval 'submit ICURL "$(IURL)" "from-icinga-2" && eventually 15 output_is QCURL "$(QURL)" "from-icinga-2"'

unknown=$(grep -o "non-existent function '[^']*'" "$Q/serve.log" | sort | uniq -c | sed 's/^ *//' | tr '\n' ';')
echo "   methods quiesce ignored: ${unknown:-none}"
check "quiesce logs the methods it does not model at debug level only" \
    eval '! grep -E " (INFO|WARN|ERROR) .*non-existent function" "$Q/serve.log"'
check "quiesce logged no warning or error while Icinga was its peer" \
    eval '! grep -E " (WARN|ERROR) " "$Q/serve.log"'
stop_quiesce >/dev/null
check "SIGTERM stops Icinga and its workers" stop_icinga

# ---------------------------------------------------------------- round 2
new_round quiesce-ca
"$QBIN" pki new-ca --state-dir "$Q" >"$Q/pki.log" 2>&1
"$QBIN" pki new-cert --cn quiesce --state-dir "$Q" >>"$Q/pki.log" 2>&1
icinga pki new-cert --cn icinga --key "$I/lib/certs/icinga.key" --csr "$I/icinga.csr" >"$I/pki.log" 2>&1
"$QBIN" pki sign-csr --csr "$I/icinga.csr" --cert "$I/lib/certs/icinga.crt" --state-dir "$Q" >>"$Q/pki.log" 2>&1
cp "$Q/certs/ca.crt" "$I/lib/certs/ca.crt"
check "quiesce pki signs the CSR icinga2 pki made (icinga2 pki verify)" \
    eval 'icinga pki verify --cn icinga --cert "$I/lib/certs/icinga.crt" --cacert "$Q/certs/ca.crt" >>"$I/pki.log" 2>&1'
check "icinga2 pki verify accepts quiesce's own certificate" \
    eval 'icinga pki verify --cn quiesce --cert "$Q/certs/quiesce.crt" --cacert "$Q/certs/ca.crt" >>"$I/pki.log" 2>&1'

write_icinga_config "host = \"127.0.0.1\"; port = $QPORT"
check "Icinga starts with the certificate quiesce's CA signed" start_icinga
# quiesce's endpoint points at a port nobody listens on: only Icinga dials.
check "quiesce starts" start_quiesce "$(free_port)"
check "Icinga dials quiesce; quiesce accepts Icinga's certificate" \
    eventually 30 log_has "$Q/serve.log" "New JSON-RPC client for identity 'icinga' (Endpoint)"
check "Icinga accepts quiesce's certificate (endpoint 'quiesce' connected)" \
    eventually 10 icinga_sees_quiesce_connected
check "quiesce receives Icinga's Hello" \
    log_has "$Q/serve.log" "Received 'icinga::Hello' message from identity 'icinga'"
check "Icinga logs the connection as its own, to quiesce's port" \
    log_has "$I/daemon.log" "New client connection for identity 'quiesce' to \[127.0.0.1\]:$QPORT"
check "quiesce creates interop-h1 through its API" create_host_on_quiesce
check "a result submitted to Icinga arrives in quiesce" \
    eval 'submit ICURL "$(IURL)" "round2-from-icinga" && eventually 15 output_is QCURL "$(QURL)" "round2-from-icinga"'
check "a result submitted to quiesce arrives in Icinga" \
    eval 'submit QCURL "$(QURL)" "round2-from-quiesce" && eventually 15 output_is ICURL "$(IURL)" "round2-from-quiesce"'
check "... with the host DOWN on both sides" eval 'state_is ICURL "$(IURL)" 1 && state_is QCURL "$(QURL)" 1'
check "quiesce logged no warning or error while Icinga was its peer" \
    eval '! grep -E " (WARN|ERROR) " "$Q/serve.log" | grep -v "Cannot connect to host"'
check "SIGTERM stops quiesce with exit code 0" stop_quiesce
check "SIGTERM stops Icinga and its workers" stop_icinga

echo
if [ "$FAILS" -eq 0 ]; then
    echo "ALL PASSED"
else
    echo "$FAILS CHECK(S) FAILED"
    exit 1
fi
