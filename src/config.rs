//! The node's settings: from flags, a config file, or a simulation's world.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// An API user as `--api-user NAME:PASSWORD[:PERM,PERM..]` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ApiUser {
    /// The user name.
    pub name: String,
    /// The password, compared in constant time.
    pub password: String,
    /// Permission patterns (`objects/query/*`, `*`), matched case-insensitively.
    #[serde(default = "all_permissions")]
    pub permissions: Vec<String>,
}

fn all_permissions() -> Vec<String> {
    vec!["*".to_string()]
}

impl std::str::FromStr for ApiUser {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let password = parts
            .next()
            .ok_or_else(|| format!("API user '{s}' has no password (NAME:PASSWORD[:PERM,..])"))?;
        if name.is_empty() || password.is_empty() {
            return Err(format!("API user '{s}' needs a non-empty name and password"));
        }
        let permissions = match parts.next() {
            Some(p) => p.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect(),
            None => all_permissions(),
        };
        Ok(ApiUser { name: name.into(), password: password.into(), permissions })
    }
}

/// A cluster endpoint as `--endpoint NAME@HOST:PORT` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EndpointConfig {
    /// The endpoint's name, which is also the identity it presents.
    pub name: String,
    /// Where to connect to it.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl std::str::FromStr for EndpointConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("endpoint '{s}' is not NAME@HOST:PORT");
        let (name, addr) = s.split_once('@').ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if name.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(EndpointConfig { name: name.into(), host: host.trim_matches(['[', ']']).into(), port })
    }
}

/// Every interval and timeout of the stack. The defaults are Icinga's.
#[derive(Clone, Debug, PartialEq)]
pub struct Timings {
    /// Sniffing and registration of a new connection; an outgoing connect.
    pub connect_timeout: Duration,
    /// A TLS handshake on a new connection (Icinga's `TlsHandshakeTimeout`).
    pub tls_handshake_timeout: Duration,
    /// Back-off after an accept error that is not "closed".
    pub accept_backoff: Duration,
    /// An HTTP connection idle this long between requests is closed.
    pub http_idle_timeout: Duration,
    /// After Stop asks an HTTP connection to finish, it gets this long.
    pub http_close_cap: Duration,
    /// How often to write the state directory while running.
    pub persist_interval: Duration,
    /// How often to reconnect to endpoints that are not connected.
    pub reconnect_interval: Duration,
    /// How often to acknowledge log positions to endpoints.
    pub log_position_interval: Duration,
    /// How often to send `event::Heartbeat`.
    pub heartbeat_interval: Duration,
    /// How often to check an endpoint connection's liveness.
    pub liveness_check_interval: Duration,
    /// An endpoint silent this long is disconnected.
    pub liveness_timeout: Duration,
    /// An anonymous connection is closed after this long.
    pub anonymous_lifetime: Duration,
    /// On disconnect, the writer gets this long to finish its message.
    pub writer_drain: Duration,
    /// After the writer, closing the socket gets at most this long.
    pub close_cap: Duration,
    /// A request body must have arrived whole this long after its head.
    pub http_body_timeout: Duration,
    /// A response write that makes no progress this long ends the connection
    /// (a client that never reads its response).
    pub http_write_timeout: Duration,
    /// Relayed messages older than this leave the replay log, acknowledged
    /// or not (Icinga's `log_duration`).
    pub log_duration: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        let s = Duration::from_secs;
        Timings {
            connect_timeout: s(15),
            tls_handshake_timeout: s(10),
            accept_backoff: Duration::from_millis(100),
            http_idle_timeout: s(10),
            http_close_cap: s(10),
            persist_interval: s(60),
            reconnect_interval: s(10),
            log_position_interval: s(5),
            heartbeat_interval: s(20),
            liveness_check_interval: s(30),
            liveness_timeout: s(60),
            anonymous_lifetime: s(10),
            writer_drain: s(5),
            close_cap: s(10),
            http_body_timeout: s(60),
            http_write_timeout: s(10),
            log_duration: s(86_400),
        }
    }
}

/// Size and count limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest HTTP header block.
    pub http_header: usize,
    /// Largest HTTP body for ordinary users.
    pub http_body: usize,
    /// Largest HTTP body for users with `*` or `config/modify`.
    pub http_body_admin: usize,
    /// Largest JSON-RPC message from an anonymous peer.
    pub jsonrpc_anonymous: usize,
    /// Largest JSON-RPC message from an endpoint.
    pub jsonrpc_endpoint: usize,
    /// Largest JSON-RPC message before the peer's Hello has identified it.
    pub jsonrpc_before_hello: usize,
    /// Most anonymous JSON-RPC connections at once, counted from their first byte.
    pub max_anonymous: usize,
    /// Most connections at once per listen address; more are closed at accept.
    pub max_connections: usize,
    /// Most bytes queued for one cluster connection's writer; a peer that
    /// falls further behind is disconnected (its replay log keeps the rest).
    pub send_queue_bytes: usize,
    /// Most evaluation steps one request's filter may take over all objects.
    pub filter_budget: u64,
    /// The most message bytes one endpoint's replay log keeps.
    pub replay_log_bytes: usize,
    /// Events an event-stream subscriber may fall behind before it misses
    /// some (and is told so).
    pub event_backlog: usize,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: usize = 1024 * 1024;
        Limits {
            http_header: MIB,
            http_body: MIB,
            http_body_admin: 512 * MIB,
            jsonrpc_anonymous: MIB,
            jsonrpc_endpoint: 16 * MIB,
            jsonrpc_before_hello: 64 * 1024,
            max_anonymous: 64,
            max_connections: 4096,
            send_queue_bytes: 32 * MIB,
            filter_budget: 10_000_000,
            event_backlog: crate::store::EVENT_BACKLOG,
            replay_log_bytes: 32 * MIB,
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on, each with its own acceptor.
    pub listen: Vec<SocketAddr>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// API users.
    pub api_users: Vec<ApiUser>,
    /// This node's name in the cluster.
    pub node_name: String,
    /// Cluster endpoints to connect to and to trust.
    pub endpoints: Vec<EndpointConfig>,
    /// Intervals and timeouts.
    pub timings: Timings,
    /// Sizes and counts.
    pub limits: Limits,
    /// Journal entries kept in memory (`None`: all, for the simulation).
    pub journal_capacity: Option<usize>,
    /// TLS on every listen address and outgoing connection; `None` is
    /// plain TCP, for loopback and simulation only: a Hello's claimed
    /// identity is then trusted.
    pub tls: Option<crate::tls::TlsMaterial>,
    /// Planted bugs switched on (simulation only).
    #[cfg(feature = "bug-zoo")]
    pub bugs: crate::bugs::BugSet,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5665))],
            state_dir: PathBuf::from("quiesce-state"),
            api_users: vec![],
            node_name: "localhost".into(),
            endpoints: vec![],
            timings: Timings::default(),
            limits: Limits::default(),
            journal_capacity: Some(10_000),
            tls: None,
            #[cfg(feature = "bug-zoo")]
            bugs: Default::default(),
        }
    }
}

impl Config {
    /// The configured endpoint of that name.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_user_flag_parses_with_and_without_permissions() {
        let u: ApiUser = "root:icinga".parse().unwrap();
        assert_eq!(u.permissions, vec!["*"]);
        let u: ApiUser = "ro:pw:objects/query/*,status/query".parse().unwrap();
        assert_eq!(u.permissions, vec!["objects/query/*", "status/query"]);
        assert!("nopassword".parse::<ApiUser>().is_err());
        assert!(":pw".parse::<ApiUser>().is_err());
    }

    #[test]
    fn endpoint_flag_parses_name_host_and_port() {
        let e: EndpointConfig = "b@127.0.0.1:5666".parse().unwrap();
        assert_eq!((e.name.as_str(), e.host.as_str(), e.port), ("b", "127.0.0.1", 5666));
        assert!("b127.0.0.1:5666".parse::<EndpointConfig>().is_err());
        assert!("b@host:notaport".parse::<EndpointConfig>().is_err());
    }
}
