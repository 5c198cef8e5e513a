//! Where certificates live in the state directory: Icinga's layout, with
//! `/var/lib/icinga2` replaced by the state directory.

use std::path::{Path, PathBuf};

use super::{check_name, Error};

/// The certificate files of one node in a state directory:
/// `ca/ca.crt` and `ca/ca.key` (the cluster CA, if this node has it),
/// `certs/ca.crt` (the CA this node trusts), `certs/<cn>.crt` and
/// `certs/<cn>.key` (this node's certificate and key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    state_dir: PathBuf,
    cn: String,
}

impl Layout {
    /// The layout of node `cn` in `state_dir`; `cn` must be a valid
    /// certificate name (see [`check_name`]), since it names files.
    pub fn new(state_dir: impl Into<PathBuf>, cn: &str) -> Result<Layout, Error> {
        check_name(cn)?;
        Ok(Layout { state_dir: state_dir.into(), cn: cn.to_owned() })
    }

    /// The node's name, its certificate's CN.
    pub fn cn(&self) -> &str {
        &self.cn
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `<state>/ca`: the CA's directory.
    pub fn ca_dir(&self) -> PathBuf {
        ca_dir(&self.state_dir)
    }

    /// `<state>/ca/ca.crt`: the CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.crt")
    }

    /// `<state>/ca/ca.key`: the CA key (mode 0600).
    pub fn ca_key(&self) -> PathBuf {
        self.ca_dir().join("ca.key")
    }

    /// `<state>/certs`: the node's certificates.
    pub fn certs_dir(&self) -> PathBuf {
        self.state_dir.join("certs")
    }

    /// `<state>/certs/ca.crt`: the CA certificate this node trusts.
    pub fn trusted_ca(&self) -> PathBuf {
        self.certs_dir().join("ca.crt")
    }

    /// `<state>/certs/<cn>.crt`: this node's certificate.
    pub fn node_cert(&self) -> PathBuf {
        self.certs_dir().join(format!("{}.crt", self.cn))
    }

    /// `<state>/certs/<cn>.key`: this node's key (mode 0600).
    pub fn node_key(&self) -> PathBuf {
        self.certs_dir().join(format!("{}.key", self.cn))
    }
}

/// `<state>/ca`, for the commands that name no node.
pub(super) fn ca_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("ca")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_mirror_icinga() {
        let l = Layout::new("/var/lib/q", "agent1.example").unwrap();
        assert_eq!(l.ca_cert(), Path::new("/var/lib/q/ca/ca.crt"));
        assert_eq!(l.ca_key(), Path::new("/var/lib/q/ca/ca.key"));
        assert_eq!(l.trusted_ca(), Path::new("/var/lib/q/certs/ca.crt"));
        assert_eq!(l.node_cert(), Path::new("/var/lib/q/certs/agent1.example.crt"));
        assert_eq!(l.node_key(), Path::new("/var/lib/q/certs/agent1.example.key"));
    }

    #[test]
    fn a_name_that_is_a_path_is_refused() {
        for bad in ["", "../etc/passwd", "a/b", ".hidden", "-flag", "with space", "ümlaut"] {
            assert!(matches!(Layout::new("/s", bad), Err(Error::BadName(_))), "{bad:?}");
        }
    }
}
