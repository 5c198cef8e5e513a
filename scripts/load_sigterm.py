#!/usr/bin/env python3
"""SIGTERM under a load of 1,000 connections of mixed kinds, end to end.

Starts the release `quiesce serve` on loopback with a config file, opens
1,000 connections and keeps them busy, sends SIGTERM, and reports:

- exit: the exit code, and the time from SIGTERM to the process's exit
  (must be 0, and within 1 s);
- late: requests the server logged after `'api' stopped.` (must be 0);
- lost: writes answered 2xx, and check results the node acknowledged to a
  cluster peer, that are missing after a restart on the same state
  directory (must be 0);
- the peak resident memory of the node under that load.

The connections (1,000 in all, loopback only, bounded in time):
  250 keep-alive writers posting process-check-result to their own host
  (about 10 a second each), 150 event streams, 150 half-sent requests, 100
  idle keep-alive connections, 50 connections that never send a byte, 2
  cluster endpoints streaming check results with `ts` (50 a second each)
  and acknowledging what the node relays to them, and 298 anonymous
  cluster peers.

    python3 scripts/load_sigterm.py [path/to/quiesce] [runs]

Exits non-zero if any run misses a target. Standard library only. With
SHOW_DETAILS=1 and RUST_LOG=info,quiesce::listener=debug it also prints
Stop's steps with their times, what the endpoints sent and had
acknowledged, and the size of the state file.
"""
import asyncio, json, os, resource, signal, socket, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/quiesce"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
AUTH = "Authorization: Basic cm9vdDppY2luZ2E=\r\n"
WRITERS, STREAMS, HALF, IDLE, SILENT, ENDPOINTS, ANONYMOUS = 250, 150, 150, 100, 50, 2, 298
WRITER_PAUSE = 0.1  # each writer: about 10 requests per second
LOAD_SECONDS = 7.0
EXIT_WITHIN = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(state, port):
    """The node's config: every endpoint points at a port nobody listens on,
    so only the load's peers connect; room for every anonymous peer; a
    persist every second, so that log positions are acknowledged (only what
    is persisted is) while the load runs."""
    dead = free_port()
    lines = [f'listen = ["127.0.0.1:{port}"]', f'state_dir = "{state}"', 'node_name = "master"',
             "max_anonymous_clients = 512", "persist_interval_secs = 1", "", "[[api_user]]", 'name = "root"', 'password = "icinga"']
    for k in range(ENDPOINTS):
        lines += ["", "[[endpoint]]", f'name = "peer{k}"', 'host = "127.0.0.1"', f"port = {dead}"]
    path = os.path.join(state, "quiesce.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start(config):
    proc = subprocess.Popen([BIN, "serve", "--plain", "--config", config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, log


async def wait_serving(port):
    for _ in range(1000):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.01)
    raise SystemExit("the node did not start")


def request_bytes(method, path, body=""):
    data = body.encode()
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Accept: application/json\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    body = await r.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def call(port, method, path, body=""):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(request_bytes(method, path, body))
    status, _, data = await read_response(r)
    w.close()
    return status, data


async def writer(port, n, answered, bad):
    """Posts check results on one keep-alive connection until the node stops."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for i in range(10**9):
            body = json.dumps({"type": "Host", "host": f"w{n}", "exit_status": i % 2, "plugin_output": f"w{n}-{i}"})
            w.write(request_bytes("POST", "/v1/actions/process-check-result", body))
            status, headers, data = await read_response(r)
            if 200 <= status < 300:
                answered[n] = i
            elif status != 503:
                bad.append((status, data[:200]))
            if headers.get("connection") == "close":
                return
            await asyncio.sleep(WRITER_PAUSE)
    except (OSError, asyncio.IncompleteReadError):
        return


async def stream(port, n):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(request_bytes("POST", f"/v1/events?types=CheckResult&queue=q{n}"))
        while await r.read(65536):
            pass
    except OSError:
        pass


async def hold(port, payload, then_read=False):
    """A connection that sends `payload` (maybe nothing) and waits to be closed."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        if payload:
            w.write(payload)
        if then_read:
            await read_response(r)
        while await r.read(65536):
            pass
    except (OSError, asyncio.IncompleteReadError):
        pass


def frame(obj):
    data = json.dumps(obj).encode()
    return str(len(data)).encode() + b":" + data + b","


async def read_frame(r):
    length = await r.readuntil(b":")
    data = await r.readexactly(int(length[:-1]) + 1)
    return json.loads(data[:-1])


async def endpoint(port, k, sent, acked):
    """A cluster endpoint as Icinga is one: Hello, then a check result every
    20 ms with a rising ts, and every second a log position for what the
    node relayed to it. Records the positions the node acknowledges."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(frame({"jsonrpc": "2.0", "method": "icinga::Hello", "params": {"identity": f"peer{k}", "version": 21500}}))
        relayed = [0.0]
        reader = asyncio.ensure_future(endpoint_reader(r, k, acked, relayed))
        last_ack = time.monotonic()
        for i in range(10**9):
            ts = time.time()
            cr = {"exit_status": i % 2, "output": f"peer{k}-{i}", "execution_start": ts, "execution_end": ts}
            msg = {"jsonrpc": "2.0", "method": "event::CheckResult", "ts": ts, "params": {"host": f"c{k}", "cr": cr}}
            w.write(frame(msg))
            sent[k].append((ts, i))
            if time.monotonic() - last_ack > 1 and relayed[0]:
                w.write(frame({"jsonrpc": "2.0", "method": "log::SetLogPosition", "params": {"log_position": relayed[0]}}))
                last_ack = time.monotonic()
            await w.drain()
            await asyncio.sleep(0.02)
            if reader.done():
                return
    except (OSError, asyncio.IncompleteReadError):
        return


async def endpoint_reader(r, k, acked, relayed):
    """Reads what the node sends an endpoint, fast enough to keep up: only
    log positions are decoded; a relayed message gives just its ts."""
    buf = b""
    try:
        while True:
            data = await r.read(1 << 20)
            if not data:
                return
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                end = colon + 1 + int(buf[:colon])
                if len(buf) <= end:
                    break
                payload, buf = buf[colon + 1:end], buf[end + 1:]
                if b"log::SetLogPosition" in payload:
                    acked[k] = max(acked[k], json.loads(payload)["params"]["log_position"])
                elif (at := payload.rfind(b'"ts":')) >= 0:
                    relayed[0] = max(relayed[0], float(payload[at + 5:].split(b",")[0].split(b"}")[0]))
    except (OSError, ValueError):
        return


async def anonymous(port, k):
    hello = frame({"jsonrpc": "2.0", "method": "icinga::Hello", "params": {"identity": f"anon{k}"}})
    await hold(port, hello)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def one_run(n):
    port, state = free_port(), tempfile.mkdtemp(prefix="quiesce-load-")
    config = write_config(state, port)
    node, log = start(config)
    await wait_serving(port)
    for h in [f"w{i}" for i in range(WRITERS)] + [f"c{k}" for k in range(ENDPOINTS)]:
        status, data = await call(port, "PUT", f"/v1/objects/hosts/{h}", '{"attrs":{"check_command":"dummy"}}')
        assert status == 200, data
    answered, bad = [None] * WRITERS, []
    sent, acked = [[] for _ in range(ENDPOINTS)], [0.0] * ENDPOINTS
    half = b"POST /v1/objects/hosts HTTP/1.1\r\nHost: x\r\nContent-Le"
    idle = request_bytes("GET", "/v1")
    tasks = [asyncio.ensure_future(t) for t in
             [writer(port, i, answered, bad) for i in range(WRITERS)]
             + [stream(port, i) for i in range(STREAMS)]
             + [hold(port, half) for _ in range(HALF)]
             + [hold(port, idle, then_read=True) for _ in range(IDLE)]
             + [hold(port, b"") for _ in range(SILENT)]
             + [endpoint(port, k, sent, acked) for k in range(ENDPOINTS)]
             + [anonymous(port, k) for k in range(ANONYMOUS)]]
    await asyncio.sleep(LOAD_SECONDS)
    open_conns = sum(1 for t in tasks if not t.done())
    t0 = time.monotonic()
    node.send_signal(signal.SIGTERM)
    while node.poll() is None:
        await asyncio.sleep(0.002)
    took = time.monotonic() - t0
    code = node.returncode
    rss = peak_rss_mb()
    await asyncio.wait(tasks, timeout=10)
    for t in tasks:
        t.cancel()
    text = "".join(log)
    if os.environ.get("SHOW_DETAILS"):
        print("".join(l for l in log if "Stop:" in l or "shut down" in l or "'api' stopped" in l or "did not" in l))
    stopped = text.find("'api' stopped.")
    late = [l for l in text[stopped:].splitlines() if "Request " in l] if stopped >= 0 else ["no 'api' stopped."]

    again, _ = start(config)
    await wait_serving(port)
    lost = []
    for i, last in enumerate(answered):
        if last is not None:
            status, data = await call(port, "GET", f"/v1/objects/hosts/w{i}?attrs=last_check_result")
            out = json.loads(data)["results"][0]["attrs"]["last_check_result"]["output"]
            if int(out.split("-")[1]) < last:
                lost.append(("http", i, last, out))
    for k in range(ENDPOINTS):
        mine = [i for ts, i in sent[k] if ts <= acked[k]]
        if mine:
            status, data = await call(port, "GET", f"/v1/objects/hosts/c{k}?attrs=last_check_result")
            out = json.loads(data)["results"][0]["attrs"]["last_check_result"]["output"]
            if int(out.split("-")[1]) < max(mine):
                lost.append(("cluster", k, max(mine), out))
    again.send_signal(signal.SIGTERM)
    again.wait(timeout=20)

    writes = sum(1 for a in answered if a is not None) and sum(a + 1 for a in answered if a is not None)
    acked_results = sum(len([1 for ts, _ in sent[k] if ts <= acked[k]]) for k in range(ENDPOINTS))
    ok = code == 0 and took < EXIT_WITHIN and not late and not lost and not bad
    print(f"run {n}: {'OK' if ok else 'FAIL'}: {open_conns} connections open at SIGTERM; "
          f"exit {code} after {took * 1000:.0f} ms; {len(late)} requests logged after 'api' stopped.; "
          f"{len(lost)} answered writes or acknowledged results missing after restart "
          f"(of {writes} answered writes, {acked_results} acknowledged cluster results); "
          f"unexpected answers: {len(bad)}; peak RSS {rss:.1f} MiB")
    if os.environ.get("SHOW_DETAILS"):
        print("endpoints: sent", [len(x) for x in sent], "acked", acked)
        print("state file bytes:", os.path.getsize(os.path.join(state, "state.json")))
    for item in (late[:5] + lost[:5] + bad[:5]):
        print("   ", item)
    return ok


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    results = [asyncio.run(one_run(n)) for n in range(RUNS)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
