#!/usr/bin/env python3
"""icinga2apic against `quiesce serve` over TLS, with the CA verified.

Usage: python3 scripts/icinga2apic_smoke.py [BIN]   (default target/release/quiesce)

Starts BIN on a free loopback port with a fresh state directory (its first
start makes the CA and the node certificate), then drives the real Python
client through create, query, modify, process-check-result, acknowledge and
delete, verifying the server with the CA the node made. Installs
icinga2apic with pip if it is missing. Exits non-zero on the first failure;
SIGTERM at the end must give exit code 0.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def client_module():
    try:
        import icinga2apic.client  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "icinga2apic"], check=True)
    from icinga2apic.client import Client
    return Client


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, port, state):
    args = [binary, "serve", "--api-user", "root:icinga", "--listen", f"127.0.0.1:{port}", "--state-dir", state]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ca = os.path.join(state, "certs", "ca.crt")
    for _ in range(200):
        if os.path.exists(ca):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, ca
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("quiesce serve did not start: " + proc.stderr.read())


def smoke(client):
    client.objects.create("Host", "smoke-h1", attrs={"address": "192.0.2.10", "check_command": "hostalive"})
    got = client.objects.get("Host", "smoke-h1")
    assert got["name"] == "smoke-h1", got
    listed = client.objects.list("Host", filters='host.name=="smoke-h1"')
    assert [h["name"] for h in listed] == ["smoke-h1"], listed
    # icinga2apic sends `attrs` as the whole body: real Icinga wants {"attrs": {...}} too.
    client.objects.update("Host", "smoke-h1", {"attrs": {"vars.os": "linux"}})
    assert client.objects.get("Host", "smoke-h1")["attrs"]["vars"]["os"] == "linux"
    for _ in range(3):
        client.actions.process_check_result("Host", "smoke-h1", 1, "DOWN from icinga2apic")
    state = client.objects.get("Host", "smoke-h1")["attrs"]
    assert state["last_check_result"]["output"] == "DOWN from icinga2apic", state
    client.actions.acknowledge_problem("Host", 'host.name=="smoke-h1"', "smoke", "acknowledged over TLS")
    assert client.objects.get("Host", "smoke-h1")["attrs"]["acknowledgement"] != 0
    client.objects.delete("Host", "smoke-h1")
    assert client.objects.list("Host", filters='host.name=="smoke-h1"') == []


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/quiesce"
    Client = client_module()
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        proc, ca = start(binary, port, state)
        try:
            client = Client(f"https://localhost:{port}", "root", "icinga", ca_certificate=ca)
            smoke(client)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            log = proc.stderr.read()
        if code != 0:
            raise SystemExit(f"quiesce exited {code} after SIGTERM:\n{log}")
    print("icinga2apic smoke over TLS with the CA verified: create, get, list, update, "
          "process-check-result, acknowledge-problem, delete: ok; SIGTERM exit 0")


if __name__ == "__main__":
    main()
