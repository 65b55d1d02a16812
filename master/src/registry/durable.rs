//! `--registry=replicated_log`: the registry in a redb database at
//! `<work_dir>/registry.redb`.
//!
//! Layout: table `agents` (agent id → [`AgentRecord`] protobuf), table
//! `frameworks` (framework id → [`FrameworkRecord`]), table `meta`
//! (`format` → format version, `master` → `MasterInfo`). Every
//! [`Store::store`] is one write transaction committed with redb's default
//! `Durability::Immediate`, i.e. fsync'd before it returns.
//!
//! A damaged file must give a clear error naming it, never a panic: the
//! file is opened with redb's integrity check (a plain open trusts the file
//! and may panic on corruption), every record is decoded before the master
//! uses any of it, and a panic inside redb is caught and reported as
//! corruption as well.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mesos_proto::v1::MasterInfo;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{AgentRecord, FrameworkRecord, Key, Registry, RegistryError, Store, REGISTRY_FILE};

const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
const FRAMEWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("frameworks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// `meta` key of the format version; bump on incompatible layout changes.
const FORMAT_KEY: &str = "format";
const FORMAT: &[u8] = b"1";
/// `meta` key of the last recovering master's `MasterInfo`.
const MASTER_KEY: &str = "master";

/// The durable registry store.
pub struct DurableStore {
    dir: PathBuf,
    path: PathBuf,
    db: Option<Database>,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("path", &self.path)
            .field("open", &self.db.is_some())
            .finish()
    }
}

impl DurableStore {
    /// The store under `work_dir` (created on recovery if missing).
    pub fn new(work_dir: impl AsRef<Path>) -> Self {
        let dir = work_dir.as_ref().to_path_buf();
        DurableStore {
            path: dir.join(REGISTRY_FILE),
            dir,
            db: None,
        }
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, reason: impl std::fmt::Display) -> RegistryError {
        RegistryError::Corrupt {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    fn write_error(&self, reason: impl std::fmt::Display) -> RegistryError {
        RegistryError::Write {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Opens (or creates) the database, checking every page.
    fn open(&self) -> Result<Database, RegistryError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| RegistryError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        let created = !self.path.exists();
        let opened = catch_unwind(AssertUnwindSafe(|| {
            Database::builder()
                .set_check_integrity_on_open(true)
                .create(&self.path)
        }))
        .map_err(|panic| self.corrupt(panic_message(&panic)))?;
        let db = opened.map_err(|error| self.open_error(error))?;
        if created {
            // The new file's directory entry must be durable too.
            sync_dir(&self.dir).map_err(|e| self.write_error(e))?;
        }
        Ok(db)
    }

    fn open_error(&self, error: redb::DatabaseError) -> RegistryError {
        use redb::{DatabaseError, StorageError};
        match error {
            DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                RegistryError::Locked {
                    path: self.path.clone(),
                }
            }
            DatabaseError::Storage(StorageError::Corrupted(reason)) => self.corrupt(reason),
            DatabaseError::Storage(StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::InvalidData =>
            {
                self.corrupt(io)
            }
            DatabaseError::Storage(StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                self.corrupt(format!("truncated ({io})"))
            }
            DatabaseError::UpgradeRequired(version) => {
                self.corrupt(format!("unsupported redb file format version {version}"))
            }
            other => RegistryError::Read {
                path: self.path.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// Creates the tables of a new registry and checks the format of an
    /// existing one.
    fn initialize(&self, db: &Database) -> Result<(), RegistryError> {
        let txn = db.begin_write().map_err(|e| self.write_error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.corrupt(e))?;
            let format = meta
                .get(FORMAT_KEY)
                .map_err(|e| self.corrupt(e))?
                .map(|v| v.value().to_vec());
            match format {
                None => {
                    meta.insert(FORMAT_KEY, FORMAT)
                        .map_err(|e| self.write_error(e))?;
                }
                Some(found) if found == FORMAT => {}
                Some(found) => {
                    return Err(self.corrupt(format!(
                        "unknown registry format '{}'",
                        String::from_utf8_lossy(&found)
                    )))
                }
            }
            txn.open_table(AGENTS).map_err(|e| self.corrupt(e))?;
            txn.open_table(FRAMEWORKS).map_err(|e| self.corrupt(e))?;
        }
        txn.commit().map_err(|e| self.write_error(e))
    }

    /// Reads and decodes every record.
    fn read(&self, db: &Database) -> Result<Registry, RegistryError> {
        let txn = db.begin_read().map_err(|e| self.corrupt(e))?;
        let mut registry = Registry::default();
        let meta = txn.open_table(META).map_err(|e| self.corrupt(e))?;
        if let Some(bytes) = meta.get(MASTER_KEY).map_err(|e| self.corrupt(e))? {
            let info = MasterInfo::decode(bytes.value())
                .map_err(|e| self.corrupt(format!("master record: {e}")))?;
            registry.master = Some(info);
        }
        let agents = txn.open_table(AGENTS).map_err(|e| self.corrupt(e))?;
        for entry in agents.iter().map_err(|e| self.corrupt(e))? {
            let (id, bytes) = entry.map_err(|e| self.corrupt(e))?;
            let record = AgentRecord::decode(bytes.value())
                .map_err(|e| self.corrupt(format!("record of agent '{}': {e}", id.value())))?;
            registry.agents.insert(id.value().to_string(), record);
        }
        let frameworks = txn.open_table(FRAMEWORKS).map_err(|e| self.corrupt(e))?;
        for entry in frameworks.iter().map_err(|e| self.corrupt(e))? {
            let (id, bytes) = entry.map_err(|e| self.corrupt(e))?;
            let record = FrameworkRecord::decode(bytes.value())
                .map_err(|e| self.corrupt(format!("record of framework '{}': {e}", id.value())))?;
            registry.frameworks.insert(id.value().to_string(), record);
        }
        Ok(registry)
    }

    fn write(
        &self,
        db: &Database,
        registry: &Registry,
        keys: &BTreeSet<Key>,
    ) -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        {
            let mut agents = txn.open_table(AGENTS)?;
            let mut frameworks = txn.open_table(FRAMEWORKS)?;
            let mut meta = txn.open_table(META)?;
            for key in keys {
                match key {
                    Key::Master => {
                        if let Some(info) = &registry.master {
                            meta.insert(MASTER_KEY, info.encode_to_vec().as_slice())?;
                        }
                    }
                    Key::Agent(id) => match registry.agents.get(id) {
                        Some(record) => {
                            agents.insert(id.as_str(), record.encode_to_vec().as_slice())?;
                        }
                        None => {
                            agents.remove(id.as_str())?;
                        }
                    },
                    Key::Framework(id) => match registry.frameworks.get(id) {
                        Some(record) => {
                            frameworks.insert(id.as_str(), record.encode_to_vec().as_slice())?;
                        }
                        None => {
                            frameworks.remove(id.as_str())?;
                        }
                    },
                }
            }
        }
        // Durability::Immediate (the default): fsync'd when this returns.
        txn.commit()?;
        Ok(())
    }
}

impl Store for DurableStore {
    fn recover(&mut self) -> Result<Registry, RegistryError> {
        let db = self.open()?;
        let read = catch_unwind(AssertUnwindSafe(|| {
            self.initialize(&db)?;
            self.read(&db)
        }))
        .map_err(|panic| self.corrupt(panic_message(&panic)))?;
        let registry = read?;
        self.db = Some(db);
        Ok(registry)
    }

    fn store(&mut self, registry: &Registry, keys: &BTreeSet<Key>) -> Result<(), RegistryError> {
        let Some(db) = &self.db else {
            return Err(self.write_error("the registry was not recovered"));
        };
        self.write(db, registry, keys)
            .map_err(|e| self.write_error(e))
    }
}

/// fsync of a directory, so that a new file's entry survives a crash.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown error");
    format!("reading it failed: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Operation;
    use mesos_proto::v1::{AgentId, AgentInfo, FrameworkId, FrameworkInfo};

    fn populated() -> (Registry, BTreeSet<Key>) {
        let mut registry = Registry::default();
        let mut keys = BTreeSet::new();
        let operations = [
            Operation::RecordMaster(MasterInfo {
                id: "m".into(),
                ..Default::default()
            }),
            Operation::AdmitAgent(AgentInfo {
                id: Some(AgentId {
                    value: "m-S0".into(),
                }),
                hostname: "h0".into(),
                ..Default::default()
            }),
            Operation::AdmitAgent(AgentInfo {
                id: Some(AgentId {
                    value: "m-S1".into(),
                }),
                hostname: "h1".into(),
                ..Default::default()
            }),
            Operation::MarkAgentUnreachable {
                agent_id: "m-S1".into(),
                time: 12.5,
            },
            Operation::AddFramework(FrameworkInfo {
                id: Some(FrameworkId {
                    value: "m-0000".into(),
                }),
                user: "root".into(),
                name: "f".into(),
                ..Default::default()
            }),
        ];
        for operation in operations {
            keys.extend(operation.apply(&mut registry).unwrap());
        }
        (registry, keys)
    }

    #[test]
    fn what_is_stored_is_recovered_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, keys) = populated();
        let mut store = DurableStore::new(dir.path());
        assert_eq!(store.recover().unwrap(), Registry::default());
        store.store(&registry, &keys).unwrap();
        drop(store);

        let mut reopened = DurableStore::new(dir.path());
        assert_eq!(reopened.recover().unwrap(), registry);

        // Deletions are stored too.
        let mut changed = registry.clone();
        let key = Operation::RemoveAgent {
            agent_id: "m-S0".into(),
        }
        .apply(&mut changed)
        .unwrap()
        .unwrap();
        reopened.store(&changed, &BTreeSet::from([key])).unwrap();
        drop(reopened);
        assert_eq!(DurableStore::new(dir.path()).recover().unwrap(), changed);
    }

    #[test]
    fn a_second_master_on_the_same_work_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = DurableStore::new(dir.path());
        first.recover().unwrap();
        let error = DurableStore::new(dir.path()).recover().unwrap_err();
        assert!(matches!(error, RegistryError::Locked { .. }), "{error}");
        assert!(error.to_string().contains("registry.redb"), "{error}");
    }

    #[test]
    fn damaged_files_are_reported_by_name_never_by_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, keys) = populated();
        {
            let mut store = DurableStore::new(dir.path());
            store.recover().unwrap();
            store.store(&registry, &keys).unwrap();
        }
        let good = std::fs::read(dir.path().join(REGISTRY_FILE)).unwrap();
        let mut variants: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"this is not a registry at all".repeat(100)),
            ("truncated header", good[..64].to_vec()),
            ("truncated", good[..good.len() / 2].to_vec()),
        ];
        // Every page flipped in turn: headers, tree pages, record bytes.
        for offset in (0..good.len()).step_by(4096).chain([100, 600, 5000]) {
            let mut flipped = good.clone();
            for byte in flipped.iter_mut().skip(offset).take(64) {
                *byte ^= 0x5a;
            }
            variants.push(("flipped", flipped));
        }
        for (what, bytes) in variants {
            let case = tempfile::tempdir().unwrap();
            let path = case.path().join(REGISTRY_FILE);
            std::fs::write(&path, &bytes).unwrap();
            match DurableStore::new(case.path()).recover() {
                // Damage redb can repair (e.g. in the unused commit slot)
                // must still give back exactly what was stored.
                Ok(recovered) => assert!(
                    recovered == registry || recovered == Registry::default(),
                    "{what}: recovered something else: {recovered:?}"
                ),
                Err(error) => {
                    assert!(
                        matches!(error, RegistryError::Corrupt { .. }),
                        "{what}: {error}"
                    );
                    assert!(
                        error.to_string().contains(path.to_str().unwrap()),
                        "{error}"
                    );
                }
            }
        }
    }
}
