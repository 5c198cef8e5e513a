//! The edge: the certificate files of a state directory, read and written
//! with std for the `pki` commands and a first `serve`, which run before the
//! stack (and its seam) exists. Nothing here is overwritten: a file that is
//! in the way is an error naming it, checked before anything is written.
#![expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the pki commands and serve's first start run before the stack and its seam exist"
)]

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions}; // seam-ok: the pki edge runs before the stack and its seam exist
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;

use super::layout::ca_dir;
use super::{certificate_from_pem, check_name, common_name, new_csr, Ca, Error, KeyPair, Layout, Serial};

/// The files a command wrote, in order, each with what it holds.
#[derive(Debug, Default)]
pub struct Written(Vec<(String, PathBuf)>);

impl Written {
    /// The files, in the order they were written.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(_, path)| path.as_path())
    }

    fn push(&mut self, what: impl Into<String>, path: PathBuf) {
        self.0.push((what.into(), path));
    }
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> =
            self.0.iter().map(|(what, path)| format!("Wrote {what} to '{}'.", path.display())).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// What [`ensure_for_serve`] found or made.
#[derive(Debug)]
pub enum Provisioned {
    /// The node's certificate was there: nothing was read or written.
    Existing(Layout),
    /// A node certificate was made, and a CA too if `new_ca`.
    Created {
        /// Where the files are.
        layout: Layout,
        /// Whether the CA was made too.
        new_ca: bool,
        /// The files written.
        written: Written,
    },
}

impl Provisioned {
    /// Where the node's files are.
    pub fn layout(&self) -> &Layout {
        match self {
            Provisioned::Existing(layout) | Provisioned::Created { layout, .. } => layout,
        }
    }
}

impl fmt::Display for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.layout();
        let (cn, certs, ca) = (l.cn(), l.certs_dir(), l.ca_dir());
        let (certs, ca, trusted) = (certs.display(), ca.display(), l.trusted_ca());
        match self {
            Provisioned::Existing(_) => write!(f, "Using the certificate '{}' for '{cn}'", l.node_cert().display()),
            Provisioned::Created { new_ca: true, .. } => write!(
                f,
                "Created a CA in '{ca}' and a certificate for '{cn}' in '{certs}'; clients verify with '{}'",
                trusted.display()
            ),
            Provisioned::Created { new_ca: false, .. } => write!(
                f,
                "Signed a certificate for '{cn}' in '{certs}' with the CA in '{ca}'; clients verify with '{}'",
                trusted.display()
            ),
        }
    }
}

/// What a first `quiesce serve` calls. The node's certificate exists: nothing
/// to do. Otherwise sign one with the state directory's CA, creating the CA
/// first if there is none; the CA certificate is copied to `certs/ca.crt`
/// unless a file is there. Never overwrites a key or a certificate.
pub fn ensure_for_serve(state_dir: &Path, cn: &str, now: SystemTime) -> Result<Provisioned, Error> {
    let layout = Layout::new(state_dir, cn)?;
    if exists(&layout.node_cert())? {
        return Ok(Provisioned::Existing(layout));
    }
    let new_ca = !exists(&layout.ca_cert())? && !exists(&layout.ca_key())?;
    if new_ca && exists(&layout.trusted_ca())? {
        // A node that trusts someone else's CA needs that CA's signature.
        let (trusted, ca_dir) = (layout.trusted_ca(), layout.ca_dir());
        return Err(Error::TrustedCaOnly { trusted, ca_dir, cn: cn.to_owned() });
    }
    refuse_node_files(&layout)?;
    let mut written = Written::default();
    let ca = if new_ca { write_ca(state_dir, now, &mut written)? } else { read_ca(state_dir)? };
    write_node_cert(&ca, &layout, now, &mut written)?;
    Ok(Provisioned::Created { layout, new_ca, written })
}

/// `quiesce pki new-ca`: a new CA in `<state>/ca`; refused if one is there.
pub fn create_ca(state_dir: &Path, now: SystemTime) -> Result<Written, Error> {
    let mut written = Written::default();
    write_ca(state_dir, now, &mut written)?;
    Ok(written)
}

/// `quiesce pki new-cert --cn NAME`: a key and a certificate for `cn` in
/// `<state>/certs`, signed by the state directory's CA.
pub fn create_node_cert(state_dir: &Path, cn: &str, now: SystemTime) -> Result<Written, Error> {
    let layout = Layout::new(state_dir, cn)?;
    refuse_node_files(&layout)?;
    let ca = read_ca(state_dir)?;
    let mut written = Written::default();
    write_node_cert(&ca, &layout, now, &mut written)?;
    Ok(written)
}

/// `quiesce pki new-cert --cn NAME --key FILE --csr FILE`: a key and a CSR
/// for another machine's CA to sign.
pub fn create_key_and_csr(cn: &str, key_path: &Path, csr_path: &Path) -> Result<Written, Error> {
    check_name(cn)?;
    refuse_existing(&[key_path, csr_path])?;
    let key = KeyPair::generate()?;
    let csr = new_csr(&key, cn)?;
    let mut written = Written::default();
    write_new(key_path, &key.to_pem(), Mode::Secret)?;
    written.push(format!("the key of '{cn}'"), key_path.to_owned());
    write_new(csr_path, &csr, Mode::Public)?;
    written.push(format!("the certificate signing request of '{cn}'"), csr_path.to_owned());
    Ok(written)
}

/// `quiesce pki sign-csr --csr FILE --cert FILE`: the CSR signed by the
/// state directory's CA.
pub fn sign_csr_file(
    state_dir: &Path,
    csr_path: &Path,
    cert_path: &Path,
    now: SystemTime,
) -> Result<Written, Error> {
    refuse_existing(&[cert_path])?;
    let ca = read_ca(state_dir)?;
    let csr = read(csr_path)?;
    let cert = ca.sign_csr(&csr, now, &Serial::random()?).map_err(|e| e.in_file(csr_path))?;
    write_new(cert_path, &cert, Mode::Public)?;
    let cn = certificate_from_pem(cert.as_bytes()).ok().and_then(|der| common_name(&der)).unwrap_or_default();
    let mut written = Written::default();
    written.push(format!("the certificate of '{cn}'"), cert_path.to_owned());
    Ok(written)
}

/// The CA of `<state>/ca`, its key checked against its certificate.
pub fn read_ca(state_dir: &Path) -> Result<Ca, Error> {
    let dir = ca_dir(state_dir);
    let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    if !exists(&cert_path)? && !exists(&key_path)? {
        return Err(Error::NoCa { dir });
    }
    let key = read_key(&key_path)?;
    let cert = read(&cert_path)?;
    Ca::from_pem(&cert, key).map_err(|e| match e {
        Error::KeyMismatch => e.in_file(key_path),
        other => other.in_file(cert_path),
    })
}

/// A private key file (PKCS#8, PKCS#1 RSA or SEC1 EC PEM).
pub fn read_key(path: &Path) -> Result<KeyPair, Error> {
    KeyPair::from_pem(&read(path)?).map_err(|e| e.in_file(path))
}

/// The first certificate of a PEM file.
pub fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, Error> {
    certificate_from_pem(&read(path)?).map_err(|e| e.in_file(path))
}

fn write_ca(state_dir: &Path, now: SystemTime, written: &mut Written) -> Result<Ca, Error> {
    let dir = ca_dir(state_dir);
    let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    refuse_existing(&[&cert_path, &key_path])?;
    let ca = Ca::create(KeyPair::generate()?, now, &Serial::random()?)?;
    create_dir(&dir, Mode::Secret)?;
    write_new(&key_path, &ca.key().to_pem(), Mode::Secret)?;
    written.push("the CA key", key_path);
    write_new(&cert_path, &ca.cert_pem(), Mode::Public)?;
    written.push("the CA certificate", cert_path);
    Ok(ca)
}

/// Refuses before anything is made: a certificate in the way, or a key
/// whose certificate a new pair would orphan.
fn refuse_node_files(layout: &Layout) -> Result<(), Error> {
    let (cert, key) = (layout.node_cert(), layout.node_key());
    if exists(&cert)? {
        return Err(Error::Exists { path: cert });
    }
    if exists(&key)? {
        return Err(Error::KeyWithoutCert { key, cert });
    }
    Ok(())
}

fn write_node_cert(ca: &Ca, layout: &Layout, now: SystemTime, written: &mut Written) -> Result<(), Error> {
    let cn = layout.cn();
    let key = KeyPair::generate()?;
    let cert = ca.issue(&key, cn, now, &Serial::random()?)?;
    create_dir(&layout.certs_dir(), Mode::Public)?;
    let trusted = layout.trusted_ca();
    if !exists(&trusted)? {
        write_new(&trusted, &ca.cert_pem(), Mode::Public)?;
        written.push("the CA certificate to trust", trusted);
    }
    write_new(&layout.node_key(), &key.to_pem(), Mode::Secret)?;
    written.push(format!("the key of '{cn}'"), layout.node_key());
    write_new(&layout.node_cert(), &cert, Mode::Public)?;
    written.push(format!("the certificate of '{cn}'"), layout.node_cert());
    Ok(())
}

/// Who may read a file or directory: keys and the CA's directory are the
/// owner's alone; the rest keeps the process's usual mode.
#[derive(Clone, Copy)]
enum Mode {
    Secret,
    Public,
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists().map_err(|source| Error::Read { path: path.to_owned(), source })
}

fn refuse_existing(paths: &[&Path]) -> Result<(), Error> {
    for path in paths {
        if exists(path)? {
            return Err(Error::Exists { path: path.to_path_buf() });
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })
}

/// Creates `path` and its parents; only `path` itself gets `mode`, so the
/// state directory above the CA's is not made private as a side effect.
fn create_dir(path: &Path, mode: Mode) -> Result<(), Error> {
    let failed = |source| Error::Write { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).create(parent).map_err(failed)?;
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    if let Mode::Secret = mode {
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(path).map_err(failed)
}

/// Writes a file that must not exist yet; a half-written one is removed, so
/// a failed write never leaves a truncated key or certificate behind.
fn write_new(path: &Path, content: &str, mode: Mode) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Mode::Secret = mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Exists { path: path.to_owned() },
        _ => Error::Write { path: path.to_owned(), source },
    })?;
    if let Err(source) = file.write_all(content.as_bytes()).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(Error::Write { path: path.to_owned(), source });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quiesce-pki-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_first_serve_makes_a_ca_and_a_node_certificate_then_keeps_them() {
        let dir = scratch("first");
        let made = ensure_for_serve(&dir, "node1", now()).unwrap();
        assert!(matches!(made, Provisioned::Created { new_ca: true, .. }), "{made:?}");
        let l = made.layout().clone();
        let cert = read_certificate(&l.node_cert()).unwrap();
        assert_eq!(common_name(&cert).as_deref(), Some("node1"));
        assert_eq!(fs::read(l.trusted_ca()).unwrap(), fs::read(l.ca_cert()).unwrap());
        assert!(made.to_string().contains("clients verify with"), "{made}");
        #[cfg(unix)]
        assert_eq!((mode(&l.ca_key()), mode(&l.node_key()), mode(&l.ca_dir())), (0o600, 0o600, 0o700));
        #[cfg(unix)]
        assert_ne!(mode(&dir), 0o700, "only the CA's directory is private");
        let before = fs::read(l.node_cert()).unwrap();
        assert!(matches!(ensure_for_serve(&dir, "node1", now()).unwrap(), Provisioned::Existing(_)));
        assert_eq!(fs::read(l.node_cert()).unwrap(), before, "an existing certificate is kept");
        // Another name in the same directory: signed by the CA that is there.
        let second = ensure_for_serve(&dir, "node2", now()).unwrap();
        assert!(matches!(second, Provisioned::Created { new_ca: false, .. }), "{second:?}");
        assert_eq!(read_ca(&dir).unwrap().cert_pem().as_bytes(), fs::read(l.ca_cert()).unwrap());
    }

    #[test]
    fn a_key_without_its_certificate_is_not_orphaned() {
        let dir = scratch("orphan");
        let l = ensure_for_serve(&dir, "node1", now()).unwrap().layout().clone();
        fs::remove_file(l.node_cert()).unwrap();
        let key = fs::read(l.node_key()).unwrap();
        let e = ensure_for_serve(&dir, "node1", now()).unwrap_err();
        assert!(matches!(e, Error::KeyWithoutCert { .. }), "{e}");
        assert_eq!(fs::read(l.node_key()).unwrap(), key);
    }

    #[test]
    fn a_node_that_trusts_a_ca_it_does_not_have_makes_none() {
        let dir = scratch("agent");
        let l = Layout::new(&dir, "agent1").unwrap();
        fs::create_dir_all(l.certs_dir()).unwrap();
        fs::write(l.trusted_ca(), "the master's CA").unwrap();
        let e = ensure_for_serve(&dir, "agent1", now()).unwrap_err();
        assert!(matches!(e, Error::TrustedCaOnly { .. }), "{e}");
        assert!(!l.ca_dir().exists());
    }

    #[test]
    fn new_ca_refuses_to_overwrite() {
        let dir = scratch("twice");
        let written = create_ca(&dir, now()).unwrap();
        assert_eq!(written.paths().count(), 2);
        let key = fs::read(dir.join("ca/ca.key")).unwrap();
        let e = create_ca(&dir, now()).unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
        assert_eq!(fs::read(dir.join("ca/ca.key")).unwrap(), key);
    }

    #[test]
    fn a_csr_from_elsewhere_is_signed_by_the_local_ca() {
        let (dir, other) = (scratch("sign"), scratch("elsewhere"));
        fs::create_dir_all(&other).unwrap();
        create_ca(&dir, now()).unwrap();
        let (key, csr, cert) = (other.join("a.key"), other.join("a.csr"), other.join("a.crt"));
        create_key_and_csr("agent7", &key, &csr).unwrap();
        let written = sign_csr_file(&dir, &csr, &cert, now()).unwrap();
        assert!(written.to_string().contains("the certificate of 'agent7'"), "{written}");
        assert_eq!(common_name(&read_certificate(&cert).unwrap()).as_deref(), Some("agent7"));
        let e = sign_csr_file(&dir, &csr, &cert, now()).unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        assert!(matches!(
            create_key_and_csr("agent7", &key, &other.join("b.csr")),
            Err(Error::Exists { .. })
        ));
    }

    #[test]
    fn file_errors_name_the_file() {
        let (dir, other) = (scratch("errors"), scratch("errors-other"));
        fs::create_dir_all(&other).unwrap();
        let (csr, cert) = (other.join("x.csr"), other.join("x.crt"));
        let e = sign_csr_file(&dir, &csr, &cert, now()).unwrap_err();
        assert!(matches!(e, Error::NoCa { .. }), "{e}");
        assert!(matches!(create_node_cert(&dir, "n", now()), Err(Error::NoCa { .. })));
        create_ca(&dir, now()).unwrap();
        let e = sign_csr_file(&dir, &csr, &cert, now()).unwrap_err().to_string();
        assert!(e.starts_with("cannot read '") && e.contains("x.csr"), "{e}");
        fs::write(&csr, read_ca(&dir).unwrap().cert_pem()).unwrap();
        let e = sign_csr_file(&dir, &csr, &cert, now()).unwrap_err().to_string();
        assert!(e.contains("x.csr': expected a PEM 'CERTIFICATE REQUEST' block"), "{e}");
        assert!(!cert.exists());
        fs::write(dir.join("ca/ca.key"), "-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let e = read_ca(&dir).unwrap_err().to_string();
        assert!(
            e.contains("ca.key': expected a PEM 'PRIVATE KEY' block, found a block that is not valid base64"),
            "{e}"
        );
    }

    #[test]
    fn a_ca_key_that_is_not_the_certificates_is_named() {
        let (a, b) = (scratch("mismatch-a"), scratch("mismatch-b"));
        create_ca(&a, now()).unwrap();
        create_ca(&b, now()).unwrap();
        fs::copy(b.join("ca/ca.key"), a.join("ca/ca.key")).unwrap();
        let e = read_ca(&a).unwrap_err().to_string();
        assert!(e.contains("ca.key': the key does not belong to the certificate"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_directory_is_named() {
        let dir = scratch("readonly");
        fs::write(&dir, "a file where the state directory should be").unwrap();
        let e = create_ca(&dir, now()).unwrap_err().to_string();
        assert!(e.starts_with("cannot ") && e.contains("quiesce-pki-readonly"), "{e}");
        fs::remove_file(&dir).unwrap();
    }
}
