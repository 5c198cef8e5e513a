//! The state directory: the store's objects (and, with the cluster, log
//! positions and the replay log), written atomically and loaded at start.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::{Env, Point};
pub use crate::jsonrpc::cluster::{ClusterSnapshot, EndpointSnapshot, ReplayEntry};
use crate::store::{unix_seconds, StoreSnapshot};

/// The file inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// The lock file that keeps a second node off the same state directory.
pub const LOCK_FILE: &str = "lock";

/// The format version written; a newer one is refused rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a node keeps across restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Format version.
    pub version: u32,
    /// The objects.
    pub store: StoreSnapshot,
    /// Log positions and replay logs (absent in files without a cluster).
    #[serde(default)]
    pub cluster: ClusterSnapshot,
}

/// Why the state directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or creating failed.
    #[error("cannot use state directory '{path}': {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The file is not a state file; it was moved to `kept`.
    #[error("state file '{path}' is corrupt ({reason}); it was moved to '{kept}' and nothing was loaded. Restore it, or start again to begin with an empty state")]
    Corrupt { path: PathBuf, kept: PathBuf, reason: String },
    /// A newer quiesce wrote the file; it was left as it is.
    #[error("state file '{path}' has format version {version}, newer than this quiesce reads ({FORMAT_VERSION}); it was left untouched. Run a newer quiesce, or move the file away to start empty")]
    Newer { path: PathBuf, version: u32 },
    /// Another node holds the directory's lock file.
    #[error(
        "state directory '{dir}' is in use by another quiesce process (lock file '{lock}' held by {holder})"
    )]
    Locked { dir: PathBuf, lock: PathBuf, holder: String },
}

/// The state file's path in `dir`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Creates the state directory if needed and takes its lock for `holder`,
/// so that no second node uses it while the guard lives.
pub async fn lock<E: Env>(env: &E, dir: &Path, holder: String) -> Result<E::FileLock, StateError> {
    env.create_dir_all(dir).await.map_err(|source| StateError::Io { path: dir.into(), source })?;
    let lock = dir.join(LOCK_FILE);
    match env.lock_file(&lock, holder).await {
        Ok(guard) => Ok(guard),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            let holder = match env.read_file(&lock).await {
                Ok(Some(bytes)) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
                _ => "an unknown process".into(),
            };
            Err(StateError::Locked { dir: dir.into(), lock, holder })
        }
        Err(source) => Err(StateError::Io { path: lock, source }),
    }
}

/// Loads the state directory; `Ok(None)` if it holds no state yet. Whatever
/// the API stored loads back: attributes nest at most `MAX_DEPTH` levels
/// and the file adds five above them, far below serde_json's 128 (a test
/// holds the numbers). A file that still does not parse is corrupt.
pub async fn load<E: Env>(env: &E, dir: &Path) -> Result<Option<StateFile>, StateError> {
    env.create_dir_all(dir).await.map_err(|source| StateError::Io { path: dir.into(), source })?;
    let path = state_path(dir);
    let Some(bytes) =
        env.read_file(&path).await.map_err(|source| StateError::Io { path: path.clone(), source })?
    else {
        return Ok(None);
    };
    match parse(&bytes) {
        Ok(state) => Ok(Some(state)),
        Err(Unreadable::Newer(version)) => Err(StateError::Newer { path, version }),
        Err(Unreadable::Corrupt(reason)) => Err(keep_aside(env, &path, reason).await),
    }
}

/// Why a state file's bytes were not loaded.
#[derive(Debug, PartialEq)]
enum Unreadable {
    /// Not a state file of any version this quiesce knows.
    Corrupt(String),
    /// A state file of a newer format: not ours to judge, nor to move.
    Newer(u32),
}

fn parse(bytes: &[u8]) -> Result<StateFile, Unreadable> {
    // The version is read first, so that a newer format is never called corrupt.
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let corrupt = |e: serde_json::Error| Unreadable::Corrupt(e.to_string());
    let Versioned { version } = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version > FORMAT_VERSION {
        return Err(Unreadable::Newer(version));
    }
    if version != FORMAT_VERSION {
        return Err(Unreadable::Corrupt(format!("format version {version} is not {FORMAT_VERSION}")));
    }
    let state: StateFile = serde_json::from_slice(bytes).map_err(corrupt)?;
    check_cluster(&state.cluster).map_err(Unreadable::Corrupt)?;
    Ok(state)
}

/// The latest relay `ts` a state file may hold (about the year 31,690,000):
/// past it the node could not give a later message a larger `ts`.
const MAX_TS: f64 = 1e15;

/// The cluster's rules as a written file keeps them: every replay log is
/// rising, past what its endpoint acknowledged, and not past the last relay
/// `ts`. A file that breaks them was not written by quiesce.
fn check_cluster(cluster: &ClusterSnapshot) -> Result<(), String> {
    if !(0.0..=MAX_TS).contains(&cluster.last_ts) {
        return Err(format!("cluster last_ts {} is out of range", cluster.last_ts));
    }
    for (name, e) in &cluster.endpoints {
        let mut last = e.acked;
        for entry in &e.replay {
            if entry.ts <= last || entry.ts > cluster.last_ts {
                return Err(format!(
                    "replay log of endpoint '{}' is out of order at ts {}",
                    crate::logsafe::Text(name),
                    entry.ts
                ));
            }
            last = entry.ts;
        }
        if e.acked > cluster.last_ts {
            return Err(format!(
                "endpoint '{}' acknowledged {} past last_ts",
                crate::logsafe::Text(name),
                e.acked
            ));
        }
    }
    Ok(())
}

/// Moves a corrupt file out of the way so that it is never overwritten.
async fn keep_aside<E: Env>(env: &E, path: &Path, reason: String) -> StateError {
    let stamp = unix_seconds(env.now()) as u64;
    let mut kept = path.as_os_str().to_os_string();
    kept.push(format!(".corrupt-{stamp}"));
    let kept = PathBuf::from(kept);
    if let Err(source) = env.rename(path, &kept).await {
        return StateError::Io { path: path.into(), source };
    }
    StateError::Corrupt { path: path.into(), kept, reason }
}

/// Writes the state file atomically and durably: a temporary file, flushed,
/// renamed over the old one, and the directory flushed, so that a crash or
/// a power cut at any step leaves either the old file or the new one.
pub async fn save<E: Env>(env: &E, dir: &Path, state: &StateFile) -> std::io::Result<()> {
    write_durably(env, dir, state, false).await
}

/// [`save`]; `skip_fsync` is the planted bug `rename-without-fsync` only.
pub(crate) async fn write_durably<E: Env>(
    env: &E,
    dir: &Path,
    state: &StateFile,
    skip_fsync: bool,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    debug_assert_eq!(parse(&bytes).as_ref(), Ok(state), "a state file must load back as it was written");
    let (path, tmp) = (state_path(dir), dir.join(TMP_FILE));
    env.point(Point::FsBeforeWrite).await;
    env.write_file(&tmp, bytes).await?;
    env.point(Point::FsBeforeFsync).await;
    // Without the flush, the rename may reach the disk before the data it
    // names: a power cut leaves an empty file (Icinga's zero-length state
    // files, fixed by an fsync in SaveJsonFile).
    if !skip_fsync {
        env.sync_file(&tmp).await?;
    }
    env.point(Point::FsBeforeRename).await;
    env.rename(&tmp, &path).await?;
    env.point(Point::FsBeforeDirSync).await;
    env.sync_dir(dir).await
}

/// The temporary file a persist writes before its rename.
const TMP_FILE: &str = "state.json.tmp";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::input::{depth_until, MAX_DEPTH};
    use crate::store::{Object, ObjectType};

    #[test]
    fn the_deepest_attribute_leaves_the_state_file_far_within_serde_jsons_limit() {
        let deepest = (0..MAX_DEPTH).fold(json!(1), |v, _| json!({ "a": v }));
        let attrs = [("vars".to_string(), deepest)].into_iter().collect();
        let object = Object { otype: ObjectType::Host, name: "h".into(), attrs };
        let store = StoreSnapshot { objects: vec![Arc::new(object)], next_comment: 1 };
        let state = StateFile { version: FORMAT_VERSION, store, cluster: ClusterSnapshot::default() };
        let bytes = serde_json::to_vec(&state).unwrap();
        let file: Value = serde_json::from_slice(&bytes).unwrap();
        // The root, `store`, `objects`, the object and `attrs` sit above an attribute.
        let structure = 5;
        assert_eq!(depth_until(&file, 128), structure + MAX_DEPTH);
        assert!(structure + MAX_DEPTH <= 128 / 2, "well below serde_json's 128 levels");
        assert_eq!(parse(&bytes), Ok(state));
    }

    fn cluster_file(last_ts: f64, acked: f64, replay: &[f64]) -> Vec<u8> {
        let replay: Vec<Value> = replay.iter().map(|ts| json!({"ts": ts, "message": "m"})).collect();
        let endpoints = json!({"b": {"acked": acked, "applied": 0.0, "replay": replay}});
        let file = json!({"version": FORMAT_VERSION, "store": StoreSnapshot::default(),
            "cluster": {"last_ts": last_ts, "endpoints": endpoints}});
        serde_json::to_vec(&file).unwrap()
    }

    #[test]
    fn a_cluster_file_that_breaks_the_bookkeeping_rules_is_corrupt() {
        assert!(parse(&cluster_file(5.0, 1.0, &[2.0, 3.0])).is_ok(), "rising, past acked, not past last_ts");
        let corrupt = |bytes: Vec<u8>| matches!(parse(&bytes), Err(Unreadable::Corrupt(_)));
        assert!(corrupt(cluster_file(5.0, 1.0, &[3.0, 2.0])), "out of order");
        assert!(corrupt(cluster_file(5.0, 1.0, &[2.0, 2.0])), "a ts twice");
        assert!(corrupt(cluster_file(5.0, 2.0, &[2.0])), "an acknowledged message kept");
        assert!(corrupt(cluster_file(5.0, 1.0, &[6.0])), "a message newer than last_ts");
        assert!(corrupt(cluster_file(1e300, 0.0, &[])), "a last_ts no clock reaches");
        assert!(corrupt(cluster_file(-1.0, 0.0, &[])), "a negative last_ts");
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "these tests set up a real directory for the real environment; no simulation runs here"
)]
mod lock_tests {
    use super::*;
    use crate::env::tokio::TokioEnv;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quiesce-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // seam-ok: a test arranges the real state directory it locks
        dir
    }

    #[tokio::test]
    async fn a_lock_held_by_another_program_names_an_unknown_holder() {
        // A program other than quiesce may lock the file without writing a
        // name into it; the refusal must still say who, as well as it can.
        let dir = scratch("foreign");
        std::fs::create_dir_all(&dir).unwrap(); // seam-ok: a test arranges the real state directory it locks
        let foreign = std::fs::File::create(dir.join(LOCK_FILE)).unwrap(); // seam-ok: a test arranges the real state directory it locks
        foreign.try_lock().unwrap();
        match lock(&TokioEnv::new(), &dir, "node1".into()).await {
            Err(StateError::Locked { holder, .. }) => assert_eq!(holder, "an unknown process"),
            other => panic!("a held lock must be refused as Locked, got {other:?}"),
        }
        drop(foreign);
        std::fs::remove_dir_all(&dir).unwrap(); // seam-ok: a test arranges the real state directory it locks
    }

    #[tokio::test]
    async fn a_lock_file_that_cannot_be_opened_is_an_io_error_not_another_holder() {
        // Blaming another process for a file we cannot open would send the
        // operator looking for a process that does not exist.
        let dir = scratch("unopenable");
        std::fs::create_dir_all(dir.join(LOCK_FILE)).unwrap(); // seam-ok: a test arranges the real state directory it locks
        match lock(&TokioEnv::new(), &dir, "node1".into()).await {
            Err(StateError::Io { path, .. }) => assert_eq!(path, dir.join(LOCK_FILE)),
            other => panic!("an unopenable lock file must be an I/O error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap(); // seam-ok: a test arranges the real state directory it locks
    }
}
