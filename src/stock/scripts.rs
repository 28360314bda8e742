//! The versioned Lua script registry.
//!
//! Scripts live in `lua/<name>.<version>.lua` and are compiled into the binary. Calls go out as
//! `EVALSHA`; when Redis answers `NOSCRIPT` (restart, failover, `SCRIPT FLUSH`) the script is
//! loaded again and the call retried once. A sale is pinned to the version it was warmed with,
//! so a process runs each sale with its own version's scripts: every live version
//! ([`KNOWN_VERSIONS`]) has a file of each sale script, its own or, when only the key layout
//! changed, the version before's. The lock scripts are not tied to a
//! sale and have one version.

use std::{collections::HashMap, sync::Arc};

use redis::RedisResult;

use crate::{
    observe::metrics::Metrics,
    stores::redis::{RedisConn, script::Script},
};

pub use crate::stores::redis::script::ReplicaWait;

pub use crate::domain::script_version::KNOWN_VERSIONS;

/// What a script does; each kind has one file per version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// Write an item's stock and metadata with expiries (`prewarm.vN.lua`).
    Prewarm,
    /// Reserve units for a buyer atomically (`deduct.vN.lua`).
    Deduct,
    /// Write a chunk of an item's state rebuilt from MySQL (`restore.vN.lua`, v3 on).
    Restore,
    /// Give the units of closed orders back (`release.vN.lua`).
    Release,
}

impl ScriptKind {
    /// The file stem of this kind.
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Prewarm => "prewarm",
            ScriptKind::Deduct => "deduct",
            ScriptKind::Restore => "restore",
            ScriptKind::Release => "release",
        }
    }
}

/// Every script file compiled into this build, by kind and version. v6 runs the v5 files: it
/// changed only where an item's keys live (their hash tag carries the sale's uid, see
/// `stores::redis::keys`), and the scripts see only KEYS.
const SOURCES: &[(ScriptKind, &str, &str)] = &[
    (ScriptKind::Prewarm, "v5", PREWARM_V5),
    (ScriptKind::Deduct, "v5", DEDUCT_V5),
    (ScriptKind::Restore, "v5", RESTORE_V5),
    (ScriptKind::Release, "v5", RELEASE_V5),
    (ScriptKind::Prewarm, "v6", PREWARM_V5),
    (ScriptKind::Deduct, "v6", DEDUCT_V5),
    (ScriptKind::Restore, "v6", RESTORE_V5),
    (ScriptKind::Release, "v6", RELEASE_V5),
];

const PREWARM_V5: &str = include_str!("../../lua/prewarm.v5.lua");
const DEDUCT_V5: &str = include_str!("../../lua/deduct.v5.lua");
const RESTORE_V5: &str = include_str!("../../lua/restore.v5.lua");
const RELEASE_V5: &str = include_str!("../../lua/release.v5.lua");

/// One script of one version.
#[derive(Debug)]
pub struct VersionedScript {
    /// The script's kind.
    pub kind: ScriptKind,
    /// Its version (`v5`).
    pub version: &'static str,
    script: Script,
}

impl std::ops::Deref for VersionedScript {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.script
    }
}

/// A script kind/version this build does not have.
#[derive(Debug, thiserror::Error)]
#[error("no Lua script {kind}.{version} in this build")]
pub struct UnknownScript {
    kind: &'static str,
    version: String,
}

/// All scripts of this build, by kind and version.
pub struct ScriptRegistry {
    scripts: HashMap<(ScriptKind, &'static str), Arc<VersionedScript>>,
    moves: MoveScripts,
    metrics: Arc<Metrics>,
}

/// The two halves of a move between holders of a sharded item's stock (one version: a move
/// does not depend on the sale's ledger layout).
#[derive(Debug)]
pub struct MoveScripts {
    /// `move_take.v1`: take units from a holder and record the move.
    pub take: Script,
    /// `move_give.v1`: add a move's units to a holder, once.
    pub give: Script,
}

impl ScriptRegistry {
    /// Builds the registry from the compiled-in sources.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let scripts = SOURCES
            .iter()
            .map(|&(kind, version, body)| {
                let label = format!("{}.{version}", kind.name());
                let script = VersionedScript {
                    kind,
                    version,
                    script: Script::new(label, body, &metrics),
                };
                ((kind, version), Arc::new(script))
            })
            .collect();
        let moves = MoveScripts {
            take: Script::new(
                "move_take.v1".into(),
                include_str!("../../lua/move_take.v1.lua"),
                &metrics,
            ),
            give: Script::new(
                "move_give.v1".into(),
                include_str!("../../lua/move_give.v1.lua"),
                &metrics,
            ),
        };
        Self {
            scripts,
            moves,
            metrics,
        }
    }

    /// The scripts that move units between a sharded item's holders.
    pub fn moves(&self) -> &MoveScripts {
        &self.moves
    }

    /// The script of `kind` a sale pinned to `version` runs.
    ///
    /// # Errors
    /// This build does not run `version` (a sale pinned to a retired version).
    pub fn get(
        &self,
        kind: ScriptKind,
        version: &str,
    ) -> Result<&Arc<VersionedScript>, UnknownScript> {
        KNOWN_VERSIONS
            .iter()
            .find(|v| **v == version)
            .and_then(|v| self.scripts.get(&(kind, *v)))
            .ok_or_else(|| UnknownScript {
                kind: kind.name(),
                version: version.to_string(),
            })
    }

    /// The metrics the scripts record into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Loads every script (start-up warm-up; calls also load lazily on NOSCRIPT).
    ///
    /// # Errors
    /// Redis refused a script (a syntax error would show up here, at start-up).
    pub(crate) async fn load_all(&self, conn: &mut RedisConn) -> RedisResult<()> {
        for script in self.scripts.values() {
            script.load(conn).await?;
        }
        self.moves.take.load(conn).await?;
        self.moves.give.load(conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_live_version_has_every_sale_script() {
        let reg = ScriptRegistry::new(Arc::new(Metrics::new()));
        for v in KNOWN_VERSIONS {
            for kind in [
                ScriptKind::Prewarm,
                ScriptKind::Deduct,
                ScriptKind::Restore,
                ScriptKind::Release,
            ] {
                let script = reg.get(kind, v).unwrap();
                assert_eq!(script.label, format!("{}.{v}", kind.name()));
            }
        }
        for retired in crate::domain::script_version::RETIRED_VERSIONS {
            assert!(reg.get(ScriptKind::Deduct, retired).is_err());
        }
        assert!(reg.get(ScriptKind::Deduct, "v999").is_err());
    }

    #[test]
    fn every_script_opens_with_its_contract() {
        for (kind, version, body) in SOURCES {
            let head: String = body.lines().take(3).collect();
            // A version that runs the file of the version before says so in its header.
            assert!(
                head.starts_with(&format!("-- {}.{version}:", kind.name()))
                    || body.contains(&format!("-- Served as v5 and as {version}.")),
                "{}.{version} must open with its name or say that it serves {version}",
                kind.name()
            );
            assert!(
                body.contains("KEYS[1]"),
                "{} lacks a KEYS contract",
                kind.name()
            );
            assert!(
                body.contains("Returns"),
                "{} lacks a Returns contract",
                kind.name()
            );
        }
    }
}
