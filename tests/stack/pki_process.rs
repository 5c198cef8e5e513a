//! `quiesce pki` as an operator runs it: a CA, a node certificate, a key and
//! CSR for another machine signed by the CA, one-line refusals, and (where
//! `openssl` is installed) OpenSSL's own verdict on the chain.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quiesce::pki::{common_name, read_certificate};

const BIN: &str = env!("CARGO_BIN_EXE_quiesce");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quiesce-pki-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn pki(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN).current_dir(cwd).arg("pki").args(args).output().expect("run quiesce")
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one stderr line of a failed command, checked to exit with `code`.
fn refused(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

fn cn(path: &Path) -> Option<String> {
    common_name(&read_certificate(path).expect("a certificate"))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// `openssl verify` of `cert` against `ca` as a TLS server and client named
/// `name`; `None` when openssl is not installed.
fn openssl_verify(ca: &Path, cert: &Path, name: &str) -> Option<Vec<String>> {
    let mut verdicts = Vec::new();
    for purpose in ["sslserver", "sslclient"] {
        let out = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-verify_hostname", name, "-CAfile"])
            .args([ca, cert])
            .output()
            .ok()?;
        verdicts.push(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Some(verdicts)
}

#[test]
fn new_ca_then_new_cert_then_a_csr_signed_elsewhere() {
    let (dir, agent) = (temp_dir("state"), temp_dir("agent"));
    let state = dir.to_str().expect("utf-8 path");
    let said = ok(&pki(&dir, &["new-ca", "--state-dir", state]));
    assert!(said.contains("ca/ca.crt") && said.contains("ca/ca.key"), "{said}");
    assert_eq!(mode(&dir.join("ca/ca.key")), 0o600);
    let err = refused(&pki(&dir, &["new-ca", "--state-dir", state]), 1);
    assert!(err.contains("exists already"), "{err}");

    let said = ok(&pki(&dir, &["new-cert", "--cn", "master1", "--state-dir", state]));
    assert!(said.contains("certs/master1.crt") && said.contains("certs/ca.crt"), "{said}");
    assert_eq!(cn(&dir.join("certs/master1.crt")).as_deref(), Some("master1"));
    assert_eq!(mode(&dir.join("certs/master1.key")), 0o600);

    let (key, csr, cert) = (agent.join("agent1.key"), agent.join("agent1.csr"), agent.join("agent1.crt"));
    let paths = [&key, &csr, &cert].map(|p| p.to_str().expect("utf-8 path").to_owned());
    let said = ok(&pki(&agent, &["new-cert", "--cn", "agent1", "--key", &paths[0], "--csr", &paths[1]]));
    assert!(said.contains("agent1.key") && said.contains("agent1.csr"), "{said}");
    let said = ok(&pki(&dir, &["sign-csr", "--csr", &paths[1], "--cert", &paths[2], "--state-dir", state]));
    assert!(said.contains("the certificate of 'agent1'"), "{said}");
    assert_eq!(cn(&cert).as_deref(), Some("agent1"));
    let err =
        refused(&pki(&dir, &["sign-csr", "--csr", &paths[1], "--cert", &paths[2], "--state-dir", state]), 1);
    assert!(err.contains("agent1.crt' exists already"), "{err}");

    let ca = dir.join("ca/ca.crt");
    for (cert, name) in [(cert.clone(), "agent1"), (dir.join("certs/master1.crt"), "master1")] {
        match openssl_verify(&ca, &cert, name) {
            Some(verdicts) => {
                assert!(verdicts.iter().all(|v| v.trim_end().ends_with(": OK")), "{verdicts:?}")
            }
            None => eprintln!("openssl is not installed: its verdict is skipped"),
        }
    }
}

#[test]
fn the_default_state_dir_is_serves() {
    let dir = temp_dir("default");
    ok(&pki(&dir, &["new-ca"]));
    assert!(dir.join("quiesce-state/ca/ca.crt").is_file());
}

#[test]
fn refusals_are_one_line() {
    let dir = temp_dir("refusals");
    let state = dir.to_str().expect("utf-8 path");
    let err =
        refused(&pki(&dir, &["sign-csr", "--csr", "x.csr", "--cert", "x.crt", "--state-dir", state]), 1);
    assert!(err.contains("there is no CA in") && err.contains("quiesce pki new-ca"), "{err}");
    let err = refused(&pki(&dir, &["new-cert", "--cn", "../escape", "--state-dir", state]), 1);
    assert!(err.contains("cannot name a certificate"), "{err}");
    let err = refused(&pki(&dir, &["new-cert", "--cn", "a", "--key", "a.key"]), 2);
    assert!(err.contains("quiesce pki --help"), "{err}");
    std::fs::write(dir.join("not.csr"), "hello").expect("write");
    ok(&pki(&dir, &["new-ca", "--state-dir", state]));
    let err =
        refused(&pki(&dir, &["sign-csr", "--csr", "not.csr", "--cert", "x.crt", "--state-dir", state]), 1);
    assert!(
        err.contains("not.csr': expected a PEM 'CERTIFICATE REQUEST' block, found no PEM block"),
        "{err}"
    );
}
