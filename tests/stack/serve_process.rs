//! `quiesce serve` as a process, as an operator meets it: one-line errors
//! with the right exit codes, a corrupt state file kept aside, and SIGTERM
//! under modifying load: exit 0, `'api' stopped.`, and every answered write
//! still there after a restart.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_quiesce");
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port 0")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quiesce-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn serve(port: u16, dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "serve",
        "--plain",
        "--api-user",
        "root:icinga",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--state-dir",
    ]);
    c.arg(dir).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// Waits for the process to exit, killing it if it takes longer than `WAIT`.
fn wait_exit(child: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("the process did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drains the child's stderr in a thread, so a chatty log never blocks it.
fn drain_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let err = child.stderr.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    })
}

/// One HTTP/1.1 request as `root` on a fresh connection; `None` if the node refused it.
fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    request_as(port, ROOT, method, path, "Content-Type: application/json\r\n", body.as_bytes())
}

fn wait_until_serving(port: u16) {
    let start = Instant::now();
    while request(port, "GET", "/v1", "").is_none() {
        assert!(start.elapsed() < WAIT, "the node did not start serving");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_flag_is_one_line_and_exit_code_2() {
    let out = Command::new(BIN).args(["serve", "--no-such-flag"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let out = Command::new(BIN).args(["serve", "--api-user", "nopassword"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_port_in_use_is_one_line_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = serve(port, &temp_dir("inuse")).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("quiesce:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&port.to_string()), "{err}");
}

#[test]
fn a_corrupt_state_file_is_an_error_and_is_kept_aside() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("state.json"), b"{ this is not json").expect("write");
    let out = serve(free_port(), &dir).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt"), "{err}");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the corrupt file is kept aside, not overwritten");
    assert_eq!(std::fs::read(kept[0].path()).expect("read"), b"{ this is not json");
}

#[test]
fn sigterm_under_load_stops_cleanly_and_loses_nothing_answered() {
    let (port, dir) = (free_port(), temp_dir("sigterm"));
    let mut node = serve(port, &dir).spawn().expect("spawn");
    let log = drain_stderr(&mut node);
    wait_until_serving(port);
    for h in 0..4 {
        assert_eq!(
            request(
                port,
                "PUT",
                &format!("/v1/objects/hosts/h{h}"),
                r#"{"attrs":{"check_command":"dummy"}}"#
            )
            .map(|r| r.0),
            Some(200)
        );
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                for i in 0..400 {
                    let body = format!(
                        r#"{{"type":"Host","host":"h{w}","exit_status":1,"plugin_output":"w{w}-{i}"}}"#
                    );
                    match request(port, "POST", "/v1/actions/process-check-result", &body) {
                        Some((200, _)) => answered.push(i),
                        Some((503, b)) => assert_eq!(b, r#"{"error":503,"status":"Shutting down."}"#),
                        Some((s, b)) => panic!("unexpected {s} {b}"),
                        None => break,
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill").args(["-TERM", &node.id().to_string()]).status().expect("kill");
    assert_eq!(wait_exit(&mut node), 0, "SIGTERM runs Stop and exits 0");
    let log = log.join().expect("stderr");
    let (before, after) =
        log.split_once("'api' stopped.").unwrap_or_else(|| panic!("no 'api' stopped.: {log}"));
    let late: Vec<&str> =
        after.lines().filter(|l| l.contains("Request POST") && l.contains("status: OK")).collect();
    assert!(late.is_empty(), "modifying requests answered 200 after 'api' stopped.: {late:?}");
    assert!(before.contains("Received request to shut down."), "{before}");
    let answered: Vec<Vec<u32>> = writers.into_iter().map(|t| t.join().expect("writer")).collect();
    assert!(answered.iter().any(|a| !a.is_empty()), "the load got some answers before Stop");

    let mut again = serve(port, &dir).spawn().expect("restart");
    let _log = drain_stderr(&mut again);
    wait_until_serving(port);
    for (w, done) in answered.iter().enumerate() {
        let Some(&last) = done.last() else { continue };
        let (status, body) =
            request(port, "GET", &format!("/v1/objects/hosts/h{w}?attrs=last_check_result"), "")
                .expect("query after restart");
        assert_eq!(status, 200);
        // A result applied whose answer was cut off by the exit may follow the
        // last answered one; nothing answered may be missing.
        let prefix = format!("\"output\":\"w{w}-");
        let stored: u32 = body
            .split_once(&prefix)
            .and_then(|(_, rest)| rest.split('"').next()?.parse().ok())
            .unwrap_or_else(|| panic!("writer {w}'s results are gone after the restart: {body}"));
        assert!(
            stored >= last,
            "writer {w}: result {last} was answered 200 but the node restarted with {stored}"
        );
    }
    Command::new("kill").args(["-TERM", &again.id().to_string()]).status().expect("kill");
    assert_eq!(wait_exit(&mut again), 0);
}

#[test]
fn a_second_node_on_the_same_state_directory_is_refused() {
    let (port, dir) = (free_port(), temp_dir("locked"));
    let mut first = serve(port, &dir).spawn().expect("spawn");
    let _log = drain_stderr(&mut first);
    wait_until_serving(port);
    let mut second = serve(free_port(), &dir).spawn().expect("spawn");
    let err = drain_stderr(&mut second);
    let code = wait_exit(&mut second);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(code, 1, "a locked state directory is an error");
    let err = err.join().expect("stderr");
    assert!(err.contains("is in use by another quiesce process") && err.contains("pid"), "{err}");
}

#[test]
fn a_state_file_of_a_newer_format_is_refused_and_left_in_place() {
    let dir = temp_dir("newer");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let newer = br#"{"version": 99, "store": {"what": "a future quiesce wrote this"}}"#;
    std::fs::write(dir.join("state.json"), newer).expect("write");
    let out = serve(free_port(), &dir).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("format version 99") && !err.contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(dir.join("state.json")).expect("read"), newer, "the file must stay as it was");
}

#[test]
fn a_persist_that_fails_at_stop_exits_non_zero_and_says_so() {
    let (port, dir) = (free_port(), temp_dir("persistfail"));
    let mut node = serve(port, &dir).spawn().expect("spawn");
    let log = drain_stderr(&mut node);
    wait_until_serving(port);
    // The temporary file's name taken by a directory: the write cannot
    // begin, whatever the permissions (tests may run as root).
    std::fs::create_dir_all(dir.join("state.json.tmp")).expect("mkdir");
    Command::new("kill").args(["-TERM", &node.id().to_string()]).status().expect("kill");
    assert_eq!(wait_exit(&mut node), 1, "a Stop that could not persist is a failure");
    let log = log.join().expect("stderr");
    assert!(log.contains("'api' stopped."), "every step still runs: {log}");
    assert!(log.contains("quiesce: Stop finished, but cannot write state directory"), "{log}");
}

/// One request with the given `Authorization` value and extra header lines.
/// The body waits for `100 Continue`, as careful clients do, so that a
/// request refused on its head alone is answered before its body is sent.
fn request_as(
    port: u16,
    auth: &str,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nAccept: application/json\r\n{extra}Expect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    let mut first = vec![0u8; 25];
    let n = s.read(&mut first).ok()?;
    first.truncate(n);
    let mut resp = Vec::new();
    if first.starts_with(b"HTTP/1.1 100") {
        s.write_all(body).ok()?;
    } else {
        resp = first;
    }
    s.read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    // What is left of `100 Continue` once the final answer begins.
    let resp = resp.get(resp.find("HTTP/1.1 ").unwrap_or(0)..).unwrap_or_default();
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// A hostile request and the status that refuses it.
struct Hostile<'a> {
    what: &'a str,
    auth: &'a str,
    path: &'a str,
    extra: &'a str,
    body: &'a str,
    code: u16,
}

impl<'a> Hostile<'a> {
    fn new(what: &'a str, auth: &'a str, path: &'a str, extra: &'a str, body: &'a str, code: u16) -> Self {
        Hostile { what, auth, path, extra, body, code }
    }
}

const CHECK_RESULT: &str = "/v1/actions/process-check-result";
const ROOT: &str = "cm9vdDppY2luZ2E="; // root:icinga
const READ_ONLY: &str = "cm86cHc="; // ro:pw, objects/query/* only

/// A raw cluster connection that sends `bytes`; whether the node closed it.
fn closed_after(port: u16, bytes: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

fn nested_json(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// What `quiesce serve` keeps of its objects, as a query shows them.
fn every_host(port: u16) -> String {
    let (status, body) = request(port, "GET", "/v1/objects/hosts", "").expect("query");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn every_hostile_request_is_refused_and_a_restart_finds_every_object() {
    let (port, dir) = (free_port(), temp_dir("hostile"));
    let mut node = serve(port, &dir).args(["--api-user", "ro:pw:objects/query/*"]).spawn().expect("spawn");
    let log = drain_stderr(&mut node);
    wait_until_serving(port);
    for h in ["h1", "h2", "h3"] {
        let body = r#"{"attrs":{"address":"192.0.2.1","check_command":"dummy","vars":{"os":"linux","tags":["a","b"]}}}"#;
        assert_eq!(request(port, "PUT", &format!("/v1/objects/hosts/{h}"), body).map(|r| r.0), Some(200));
    }
    let before = every_host(port);
    let query = "X-HTTP-Method-Override: GET\r\n";
    let chain = format!(r#"{{"filter":"{}"}}"#, vec!["1"; 20_000].join("||"));
    let deep_path = format!(r#"{{"attrs":{{"vars{}":1}}}}"#, ".a".repeat(124));
    let deep_body = format!(r#"{{"attrs":{{"notes":{}}}}}"#, nested_json(10_000));
    let deep_vars = format!(r#"{{"filter":"host.name==x","filter_vars":{{"x":{}}}}}"#, nested_json(40));
    let deep_command = format!(
        r#"{{"type":"Host","host":"h1","exit_status":0,"plugin_output":"x","check_command":{}}}"#,
        nested_json(32)
    );
    let big_output =
        format!(r#"{{"type":"Host","host":"h1","exit_status":0,"plugin_output":"{}"}}"#, "x".repeat(2 << 20));
    let refused = [
        Hostile::new("a 60 KB 1||1||… filter", READ_ONLY, "/v1/objects/hosts", query, &chain, 400),
        Hostile::new("a path 125 segments deep", ROOT, "/v1/objects/hosts/h1", "", &deep_path, 400),
        Hostile::new("a body 10,000 levels deep", ROOT, "/v1/objects/hosts/h1", "", &deep_body, 400),
        Hostile::new("filter_vars 40 levels deep", READ_ONLY, "/v1/objects/hosts", query, &deep_vars, 400),
        Hostile::new("a check_command 32 levels deep", ROOT, CHECK_RESULT, "", &deep_command, 400),
        Hostile::new("2 MiB of plugin output", ROOT, CHECK_RESULT, "", &big_output, 400),
        Hostile::new(
            "a 2 MiB body without config/modify",
            READ_ONLY,
            "/v1/objects/hosts",
            query,
            &big_output,
            413,
        ),
        Hostile::new("a wrong password", "cm9vdDp3cm9uZw==", "/v1/objects/hosts/h1", "", "{}", 401),
    ];
    for h in refused {
        let answer = request_as(port, h.auth, "POST", h.path, h.extra, h.body.as_bytes());
        let (status, text) = answer.unwrap_or_else(|| panic!("{}: no answer", h.what));
        assert_eq!(status, h.code, "{}: {text}", h.what);
        let (code, what) = (h.code, h.what);
        assert!(
            text.contains(&format!(r#""error":{code}"#)) || text.contains(&format!(r#""code":{code}"#)),
            "{what}: {text}"
        );
        assert_eq!(request(port, "GET", "/v1", "").map(|r| r.0), Some(200), "the node serves after {what}");
    }
    let bad_frames: [&[u8]; 3] =
        [b"1234567890:", b"99999:", &format!("{}:{},", nested_json(40).len(), nested_json(40)).into_bytes()];
    for frame in bad_frames {
        assert!(
            closed_after(port, frame),
            "{:?} ends its connection",
            String::from_utf8_lossy(&frame[..frame.len().min(12)])
        );
    }
    assert_eq!(every_host(port), before, "nothing hostile changed an object");
    Command::new("kill").args(["-TERM", &node.id().to_string()]).status().expect("kill");
    assert_eq!(wait_exit(&mut node), 0);
    let log = log.join().expect("stderr");
    assert!(!log.contains("panicked"), "{log}");

    let mut again = serve(port, &dir).spawn().expect("restart");
    let _log = drain_stderr(&mut again);
    wait_until_serving(port);
    assert_eq!(every_host(port), before, "every object comes back as it was");
    Command::new("kill").args(["-TERM", &again.id().to_string()]).status().expect("kill");
    assert_eq!(wait_exit(&mut again), 0);
}
