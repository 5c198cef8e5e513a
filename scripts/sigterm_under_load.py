#!/usr/bin/env python3
"""SIGTERM under load, end to end, with the standard library only.

Starts `quiesce serve` on a free port, runs modifying load over keep-alive
and fresh connections plus one idle keep-alive connection and one half-sent
request, sends SIGTERM, and checks: no modifying request answered 2xx after
`'api' stopped.` (by the server's own request log, which is ordered), every
503 is exactly the contract's body, the exit is 0 and within 1 s, and after
a restart every answered check result is present. Exits non-zero on failure.

    python3 scripts/sigterm_under_load.py [path/to/quiesce] [runs]
"""
import http.client, json, os, signal, socket, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/quiesce"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
AUTH = {"Authorization": "Basic cm9vdDppY2luZ2E=", "Accept": "application/json"}
SHUTTING_DOWN = '{"error":503,"status":"Shutting down."}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port, state):
    p = subprocess.Popen([BIN, "serve", "--plain", "--api-user", "root:icinga", "--listen", f"127.0.0.1:{port}",
                          "--state-dir", state], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True).start()
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, lines
        except OSError:
            time.sleep(0.01)
    raise SystemExit("server did not start")


def writer(port, w, keep_alive, answered, bad):
    conn = None
    for i in range(100000):
        try:
            if conn is None or not keep_alive:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            body = json.dumps({"type": "Host", "host": f"h{w}", "exit_status": i % 2, "plugin_output": f"w{w}-{i}"})
            conn.request("POST", "/v1/actions/process-check-result", body, AUTH)
            r = conn.getresponse()
            data = r.read().decode()
            if r.status == 200:
                answered.append(i)
            elif r.status == 503 and data != SHUTTING_DOWN and "Action skipped" not in data:
                bad.append(data)
            if not keep_alive or r.getheader("connection", "") == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            return


def one_run(n):
    port, state = free_port(), tempfile.mkdtemp(prefix="quiesce-accept-")
    server, log = start(port, state)
    for w in range(4):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("PUT", f"/v1/objects/hosts/h{w}", "{}", AUTH)
        assert c.getresponse().status == 200
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/v1", headers=AUTH)
    idle.getresponse().read()
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"POST /v1/objects/hosts HTTP/1.1\r\nHost: x\r\nContent-Le")
    answered, bad = [[] for _ in range(4)], []
    threads = [threading.Thread(target=writer, args=(port, w, w % 2 == 0, answered[w], bad)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=10)
    took = time.monotonic() - t0
    for t in threads:
        t.join(timeout=10)
    text = "".join(log)
    stopped = text.find("'api' stopped.")
    late = [l for l in text[stopped:].splitlines() if "Request POST" in l and "status: OK" in l] if stopped >= 0 else ["no 'api' stopped."]
    server2, _ = start(port, state)
    missing = []
    for w in range(4):
        if not answered[w]:
            continue
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", f"/v1/objects/hosts/h{w}?attrs=last_check_result", headers=AUTH)
        out = json.loads(c.getresponse().read())["results"][0]["attrs"]["last_check_result"]["output"]
        if int(out.split("-")[1]) < answered[w][-1]:
            missing.append((w, answered[w][-1], out))
    server2.send_signal(signal.SIGTERM)
    server2.wait(timeout=10)
    ok = code == 0 and took < 1.0 and not late and not bad and not missing
    total = sum(len(a) for a in answered)
    print(f"run {n}: {'OK' if ok else 'FAIL'} exit={code} in {took*1000:.0f} ms, answered 200: {total}, "
          f"bad 503 bodies: {len(bad)}, 2xx after 'api' stopped.: {len(late)}, missing after restart: {missing}")
    return ok


if __name__ == "__main__":
    results = [one_run(n) for n in range(RUNS)]
    sys.exit(0 if all(results) else 1)
