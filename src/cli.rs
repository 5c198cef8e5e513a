//! The `quiesce` command line: flags and the config file, turned into a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::config::{ApiUser, Config, EndpointConfig};
use crate::pki;

/// quiesce: an Icinga-compatible API listener whose shutdown is deterministic.
#[derive(Debug, Parser)]
#[command(name = "quiesce", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API until SIGTERM or SIGINT, then stop deterministically.
    Serve(ServeArgs),
    /// Make the CA, keys and certificates, as `icinga2 pki` does.
    #[command(subcommand)]
    Pki(PkiCommand),
}

/// The `quiesce pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the cluster CA in DIR/ca; refused if there is one.
    NewCa(StateDirArg),
    /// Create a key and a certificate signed by the local CA in DIR/certs, or
    /// with --key and --csr a key and a CSR for another machine's CA.
    NewCert(NewCertArgs),
    /// Sign a CSR with the CA in DIR/ca.
    SignCsr(SignCsrArgs),
}

/// The state directory flag of the `pki` commands.
#[derive(Debug, Args)]
pub struct StateDirArg {
    /// The state directory, as for `serve`. Default ./quiesce-state.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Flags of `quiesce pki new-cert`.
#[derive(Debug, Args)]
pub struct NewCertArgs {
    /// The node's name: the certificate's CN and DNS subjectAltName.
    #[arg(long, value_name = "NAME")]
    pub cn: String,
    /// Write the key here (with --csr) instead of into DIR/certs.
    #[arg(long, value_name = "FILE", requires = "csr", conflicts_with = "state_dir")]
    pub key: Option<PathBuf>,
    /// Write a CSR here (with --key) instead of a certificate.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub csr: Option<PathBuf>,
    /// Where the CA and the certificates are.
    #[command(flatten)]
    pub state: StateDirArg,
}

/// Flags of `quiesce pki sign-csr`.
#[derive(Debug, Args)]
pub struct SignCsrArgs {
    /// The CSR to sign.
    #[arg(long, value_name = "FILE")]
    pub csr: PathBuf,
    /// Where to write the certificate.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Where the CA is.
    #[command(flatten)]
    pub state: StateDirArg,
}

impl StateDirArg {
    /// The directory given, or the one `serve` uses by default.
    pub fn dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| Config::default().state_dir)
    }
}

impl PkiCommand {
    /// Runs the command; `now` starts the validity of what it signs.
    pub fn run(&self, now: SystemTime) -> Result<pki::Written, pki::Error> {
        match self {
            PkiCommand::NewCa(args) => pki::create_ca(&args.dir(), now),
            PkiCommand::NewCert(NewCertArgs { cn, key: Some(key), csr: Some(csr), .. }) => {
                pki::create_key_and_csr(cn, key, csr)
            }
            PkiCommand::NewCert(args) => pki::create_node_cert(&args.state.dir(), &args.cn, now),
            PkiCommand::SignCsr(args) => pki::sign_csr_file(&args.state.dir(), &args.csr, &args.cert, now),
        }
    }
}

/// Flags of `quiesce serve`. Each one overrides the config file's setting.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable). Default 127.0.0.1:5665.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// The state directory. Default ./quiesce-state.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// An API user, NAME:PASSWORD[:PERM,PERM..] (repeatable; permissions default to `*`).
    #[arg(long = "api-user", value_name = "USER")]
    pub api_users: Vec<ApiUser>,
    /// This node's name in the cluster. Default localhost.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// A cluster endpoint, NAME@HOST:PORT (repeatable).
    #[arg(long = "endpoint", value_name = "ENDPOINT")]
    pub endpoints: Vec<EndpointConfig>,
    /// A TOML file with the same settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Speak plain TCP instead of TLS. Loopback only: a cluster peer's
    /// identity is then whatever its Hello claims.
    #[arg(long)]
    pub plain: bool,
}

/// The config file: the flags' settings under the same names, plus intervals.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Addresses to listen on.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// The state directory.
    pub state_dir: Option<PathBuf>,
    /// This node's name.
    pub node_name: Option<String>,
    /// API users.
    #[serde(default)]
    pub api_user: Vec<ApiUser>,
    /// Cluster endpoints.
    #[serde(default)]
    pub endpoint: Vec<EndpointConfig>,
    /// Seconds between writes of the state directory.
    pub persist_interval_secs: Option<u64>,
    /// Most anonymous JSON-RPC connections at once.
    pub max_anonymous_clients: Option<usize>,
    /// Largest JSON-RPC message from an endpoint, in bytes.
    pub max_message_size_endpoint: Option<usize>,
    /// Largest JSON-RPC message from an anonymous peer, in bytes.
    pub max_message_size_anonymous: Option<usize>,
    /// Largest JSON-RPC message before the peer's Hello, in bytes.
    pub max_message_size_before_hello: Option<usize>,
    /// Most connections at once per listen address.
    pub max_connections: Option<usize>,
    /// Most bytes queued for one cluster connection's writer.
    pub max_send_queue_bytes: Option<usize>,
    /// Most filter evaluation steps per request.
    pub filter_budget: Option<u64>,
    /// Events a slow event-stream subscriber may fall behind.
    pub max_event_backlog: Option<usize>,
    /// Message bytes one endpoint's replay log keeps.
    pub max_replay_log_bytes: Option<usize>,
    /// Seconds a request body may take to arrive, from its head.
    pub http_body_timeout_secs: Option<u64>,
    /// Seconds a response write may make no progress.
    pub http_write_timeout_secs: Option<u64>,
    /// Seconds relayed messages stay in the replay log.
    pub log_duration_secs: Option<u64>,
}

/// Reads and parses a config file; the error is one line naming the file.
#[expect(
    clippy::disallowed_methods,
    reason = "the CLI reads its config before the stack, and its seam, exists"
)]
pub fn read_config_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path) // seam-ok: before the stack starts
        .map_err(|e| format!("cannot read config file '{}': {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        format!("config file '{}' is invalid: {msg}", path.display())
    })
}

impl ServeArgs {
    /// The node's settings: defaults, then the config file, then the flags.
    pub fn to_config(&self) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => read_config_file(path)?,
            None => FileConfig::default(),
        };
        let mut config = Config::default();
        apply_file(&mut config, file);
        self.apply_flags(&mut config);
        validate(&config)?;
        if self.plain {
            only_loopback(&config)?;
        }
        Ok(config)
    }

    fn apply_flags(&self, config: &mut Config) {
        if !self.listen.is_empty() {
            config.listen = self.listen.clone();
        }
        if let Some(dir) = &self.state_dir {
            config.state_dir = dir.clone();
        }
        if !self.api_users.is_empty() {
            config.api_users = self.api_users.clone();
        }
        if let Some(name) = &self.node_name {
            config.node_name = name.clone();
        }
        if !self.endpoints.is_empty() {
            config.endpoints = self.endpoints.clone();
        }
    }
}

fn apply_file(config: &mut Config, file: FileConfig) {
    apply_file_limits(config, &file);
    if !file.listen.is_empty() {
        config.listen = file.listen;
    }
    if let Some(dir) = file.state_dir {
        config.state_dir = dir;
    }
    if let Some(name) = file.node_name {
        config.node_name = name;
    }
    config.api_users = file.api_user;
    config.endpoints = file.endpoint;
}

fn apply_file_limits(config: &mut Config, file: &FileConfig) {
    let limits = &mut config.limits;
    let set = |to: &mut usize, from: Option<usize>| *to = from.unwrap_or(*to);
    set(&mut limits.max_anonymous, file.max_anonymous_clients);
    set(&mut limits.jsonrpc_endpoint, file.max_message_size_endpoint);
    set(&mut limits.jsonrpc_anonymous, file.max_message_size_anonymous);
    set(&mut limits.jsonrpc_before_hello, file.max_message_size_before_hello);
    set(&mut limits.max_connections, file.max_connections);
    set(&mut limits.send_queue_bytes, file.max_send_queue_bytes);
    set(&mut limits.event_backlog, file.max_event_backlog);
    set(&mut limits.replay_log_bytes, file.max_replay_log_bytes);
    limits.filter_budget = file.filter_budget.unwrap_or(limits.filter_budget);
    let t = &mut config.timings;
    if let Some(s) = file.persist_interval_secs {
        t.persist_interval = Duration::from_secs(s.max(1));
    }
    let secs =
        |to: &mut Duration, from: Option<u64>| *to = from.map_or(*to, |s| Duration::from_secs(s.max(1)));
    secs(&mut t.http_body_timeout, file.http_body_timeout_secs);
    secs(&mut t.http_write_timeout, file.http_write_timeout_secs);
    secs(&mut t.log_duration, file.log_duration_secs);
}

/// Plain TCP trusts what peers claim: only loopback may carry it, both the
/// addresses listened on and the endpoints connected to.
fn only_loopback(config: &Config) -> Result<(), String> {
    if let Some(addr) = config.listen.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "--plain serves plain TCP, which only loopback addresses may: {addr} is not loopback"
        ));
    }
    let loopback =
        |host: &str| host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if let Some(e) = config.endpoints.iter().find(|e| !loopback(&e.host)) {
        return Err(format!(
            "--plain connects over plain TCP, which only loopback hosts may: endpoint '{}' is at '{}'",
            e.name, e.host
        ));
    }
    Ok(())
}

/// Reads the node's TLS material from the state directory, where
/// `quiesce pki` and a first `serve` put it: `certs/ca.crt`,
/// `certs/<node>.crt` and `certs/<node>.key`, as Icinga lays them out.
#[expect(clippy::disallowed_methods, reason = "certificates are read before the stack starts")]
pub fn load_tls(config: &Config) -> Result<crate::tls::TlsMaterial, String> {
    let layout = crate::pki::Layout::new(&config.state_dir, &config.node_name).map_err(|e| e.to_string())?;
    let read = |file: PathBuf| {
        let bytes = std::fs::read(&file); // seam-ok: read once before the stack starts, as the config is
        bytes.map_err(|e| format!("cannot read '{}': {e}", file.display()))
    };
    let (ca, cert, key) = (read(layout.trusted_ca())?, read(layout.node_cert())?, read(layout.node_key())?);
    crate::tls::TlsMaterial::from_pem(&ca, &cert, &key)
        .map_err(|e| format!("TLS files in '{}': {e}", layout.certs_dir().display()))
}

fn validate(config: &Config) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for user in &config.api_users {
        if !names.insert(user.name.as_str()) {
            return Err(format!("API user '{}' is configured twice", user.name));
        }
    }
    let mut endpoints = std::collections::BTreeSet::new();
    for e in &config.endpoints {
        if e.name == config.node_name {
            return Err(format!("endpoint '{}' has this node's own name", e.name));
        }
        if !endpoints.insert(e.name.as_str()) {
            return Err(format!("endpoint '{}' is configured twice", e.name));
        }
    }
    if config.node_name.is_empty() {
        return Err("the node name must not be empty".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut argv = vec!["quiesce", "serve"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Serve(a) => a,
            Command::Pki(_) => unreachable!("parsed as serve"),
        })
    }

    fn pki(args: &[&str]) -> Result<PkiCommand, clap::Error> {
        let mut argv = vec!["quiesce", "pki"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Pki(c) => c,
            Command::Serve(_) => unreachable!("parsed as pki"),
        })
    }

    #[test]
    fn pki_commands_default_to_serves_state_dir_and_pair_key_with_csr() {
        let Ok(PkiCommand::NewCa(a)) = pki(&["new-ca"]) else { panic!("new-ca parses") };
        assert_eq!(a.dir(), Config::default().state_dir);
        let Ok(PkiCommand::SignCsr(a)) =
            pki(&["sign-csr", "--csr", "x.csr", "--cert", "x.crt", "--state-dir", "d"])
        else {
            panic!("sign-csr parses")
        };
        assert_eq!(a.state.dir(), PathBuf::from("d"));
        assert!(pki(&["new-cert", "--cn", "a", "--key", "a.key", "--csr", "a.csr"]).is_ok());
        assert!(pki(&["new-cert", "--cn", "a", "--key", "a.key"]).is_err(), "--key needs --csr");
        assert!(pki(&["new-cert", "--cn", "a", "--csr", "a.csr"]).is_err(), "--csr needs --key");
        assert!(pki(&["new-cert", "--cn", "a", "--key", "k", "--csr", "c", "--state-dir", "d"]).is_err());
        assert!(pki(&["new-cert"]).is_err(), "--cn is required");
        assert!(pki(&["sign-csr", "--csr", "x.csr"]).is_err(), "--cert is required");
    }

    #[test]
    fn flags_become_config() {
        let a = serve(&["--api-user", "root:icinga", "--node-name", "a", "--endpoint", "b@127.0.0.1:5666"])
            .unwrap();
        let c = a.to_config().unwrap();
        assert_eq!(c.api_users[0].name, "root");
        assert_eq!(c.endpoints[0].port, 5666);
        assert_eq!(c.listen, vec!["127.0.0.1:5665".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn plain_tcp_is_refused_beyond_loopback() {
        let cfg = |args: &[&str]| serve(args).unwrap().to_config();
        assert!(cfg(&["--plain"]).is_ok(), "the default address is loopback");
        assert!(cfg(&["--plain", "--listen", "[::1]:5665"]).is_ok());
        let err = cfg(&["--plain", "--listen", "0.0.0.0:5665"]).unwrap_err();
        assert!(err.contains("0.0.0.0:5665 is not loopback"), "{err}");
        let err = cfg(&["--plain", "--endpoint", "b@192.0.2.7:5665"]).unwrap_err();
        assert!(err.contains("endpoint 'b' is at '192.0.2.7'"), "{err}");
        assert!(cfg(&["--plain", "--endpoint", "b@localhost:5666"]).is_ok());
        assert!(cfg(&["--listen", "0.0.0.0:5665"]).is_ok(), "TLS may listen anywhere");
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(serve(&["--api-user", "nopass"]).is_err());
        assert!(serve(&["--listen", "not-an-address"]).is_err());
        assert!(serve(&["--endpoint", "b@host"]).is_err());
        let a = serve(&["--node-name", "a", "--endpoint", "a@127.0.0.1:1"]).unwrap();
        assert!(a.to_config().unwrap_err().contains("own name"));
    }

    #[test]
    fn config_file_is_toml_with_unknown_keys_refused() {
        let f: FileConfig = toml::from_str(
            "listen = [\"127.0.0.1:0\"]\nnode_name = \"a\"\n[[api_user]]\nname = \"root\"\npassword = \"pw\"\n",
        )
        .unwrap();
        assert_eq!(f.api_user[0].permissions, vec!["*"]);
        assert!(toml::from_str::<FileConfig>("lisen = []").is_err());
    }
}
