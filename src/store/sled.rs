//! The embedded default store: a sled database on disk.
//!
//! Layout: tree `things` maps [`record::key_bytes`] to an rkyv [`record`]; tree
//! `undelivered` maps the same key bytes to a 3-byte undelivered notification
//! ([`record::encode_undelivered`]); tree `meta` holds `format` =
//! [`record::FORMAT`]. Opening checks the format (a
//! database of another format is refused with a message naming both) and takes
//! sled's exclusive file lock: a second process opening the same directory gets a
//! clear "in use" error instead of corrupting it.
//!
//! Durability ([`Durability`]):
//! - [`Durability::Flush`] (default): [`Store::sync`] flushes sled's log to disk
//!   (fsync) before the registry replies; an acknowledged operation survives a
//!   crash or power loss. The registry calls `sync` after it released its lock,
//!   so concurrent writers share one flush (sled flushes everything written so
//!   far) and searches never wait for the disk.
//! - [`Durability::GroupCommit`]`(ms)`: no flush per operation; sled's background
//!   thread flushes every `ms` milliseconds. sled keeps the tail of its log in a
//!   process buffer until then, so a crash of the process (SIGKILL, abort, OOM
//!   killer) as well as a power loss can lose the operations acknowledged in the
//!   last `ms` milliseconds (plus the flush itself). The database is consistent
//!   either way and holds a prefix of the acknowledged operations (sled's log is
//!   checksummed and replayed up to the last complete write); `tests/crash.rs`
//!   checks both modes under SIGKILL.

use std::path::Path;

use crate::store::{Store, StoreError, Undelivered, record};
use crate::thing::{ThingKey, ThingRecord};

/// When writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every acknowledged operation is on disk (fsync) before its reply.
    #[default]
    Flush,
    /// A background flush every this many milliseconds (at least 1); a process
    /// crash or power loss can lose the last window of acknowledged operations.
    GroupCommit(u64),
}

/// A registry store in a sled database.
pub struct SledStore {
    db: sled::Db,
    things: sled::Tree,
    /// Undelivered notifications: key bytes of the thing -> `[1, kind, attempts]`.
    undelivered: sled::Tree,
    durability: Durability,
}

fn err(what: &str, e: sled::Error) -> StoreError {
    StoreError(format!("{what}: {e}"))
}

impl SledStore {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut config = sled::Config::new().path(path);
        config = match durability {
            Durability::Flush => config.flush_every_ms(None),
            Durability::GroupCommit(ms) => config.flush_every_ms(Some(ms.max(1))),
        };
        // A directory that already holds files is an existing database: if sled
        // then finds no records and no format marker, it was damaged, and must
        // not silently become an empty new one.
        let existed = std::fs::read_dir(path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        // sled releases its file lock from a background thread after the last
        // handle is dropped: a reopen in the same process may briefly see the
        // lock held. Retry for a while before calling the database busy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.to_string().contains("lock")
                        || io.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError(format!(
                            "the database at {} is in use by another process (its lock is held: {io})",
                            path.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(other) => {
                    return Err(err(
                        &format!("cannot open the database at {}", path.display()),
                        other,
                    ));
                }
            }
        };
        let meta = db
            .open_tree("meta")
            .map_err(|e| err("cannot open tree meta", e))?;
        let things = db
            .open_tree("things")
            .map_err(|e| err("cannot open tree things", e))?;
        let undelivered = db
            .open_tree("undelivered")
            .map_err(|e| err("cannot open tree undelivered", e))?;
        match meta
            .get("format")
            .map_err(|e| err("cannot read the format", e))?
        {
            Some(v) if v.as_ref() == record::FORMAT.as_bytes() => {}
            Some(v)
                if record::READABLE_FORMATS
                    .iter()
                    .any(|f| v.as_ref() == f.as_bytes()) =>
            {
                // Readable as is; marked with the current format from now on.
                meta.insert("format", record::FORMAT.as_bytes())
                    .map_err(|e| err("cannot write the format", e))?;
                db.flush().map_err(|e| err("cannot flush", e))?;
            }
            Some(v) => {
                return Err(StoreError(format!(
                    "the database at {} is in format '{}'; this build reads '{}'",
                    path.display(),
                    String::from_utf8_lossy(&v),
                    record::FORMAT
                )));
            }
            None => {
                if !things.is_empty() || existed {
                    return Err(StoreError(format!(
                        "the database at {} has no {} format marker: damaged, or not an iotdisco database",
                        path.display(),
                        record::FORMAT
                    )));
                }
                meta.insert("format", record::FORMAT.as_bytes())
                    .map_err(|e| err("cannot write the format", e))?;
                db.flush().map_err(|e| err("cannot flush", e))?;
            }
        }
        Ok(SledStore {
            db,
            things,
            undelivered,
            durability,
        })
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db
            .size_on_disk()
            .map_err(|e| err("cannot measure the database", e))
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }
}

impl Store for SledStore {
    fn load(&self) -> Result<Vec<ThingRecord>, StoreError> {
        let mut out = Vec::with_capacity(self.things.len());
        for kv in self.things.iter() {
            let (k, v) = kv.map_err(|e| err("cannot read the database", e))?;
            out.push(record::decode(&k, &v)?);
        }
        Ok(out)
    }

    fn load_each(
        &self,
        f: &mut dyn FnMut(ThingRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // sled's iteration (page reads, node deserialisation) runs on a scoped
        // thread of its own, handing batches of raw pairs to this one, which
        // decodes them and calls `f`: records are allocated and later freed on
        // the same thread (decoding on the other thread measured slower: frees
        // across glibc arenas cost more than the overlap saved).
        const BATCH: usize = 512;
        type Batch = Vec<(sled::IVec, sled::IVec)>;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch, StoreError>>(8);
        let things = &self.things;
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for kv in things.iter() {
                    match kv {
                        Ok(pair) => batch.push(pair),
                        Err(e) => {
                            let _ = tx.send(Err(err("cannot read the database", e)));
                            return;
                        }
                    }
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.send(Ok(full)).is_err() {
                            return; // the reader stopped at an error
                        }
                    }
                }
                let _ = tx.send(Ok(batch));
            });
            // Dropping `rx` on an early return stops the iterating thread at
            // its next send.
            for batch in rx {
                for (k, v) in batch? {
                    f(record::decode(&k, &v)?)?;
                }
            }
            Ok(())
        })
    }

    fn put(&self, r: &ThingRecord) -> Result<(), StoreError> {
        let bytes = record::encode(r)?;
        self.things
            .insert(record::key_bytes(&r.key), bytes.as_slice())
            .map_err(|e| err(&format!("cannot write {}", r.key.jid), e))?;
        Ok(())
    }

    fn delete(&self, key: &ThingKey) -> Result<(), StoreError> {
        self.things
            .remove(record::key_bytes(key))
            .map_err(|e| err(&format!("cannot delete {}", key.jid), e))?;
        Ok(())
    }

    fn load_undelivered(&self) -> Result<Vec<Undelivered>, StoreError> {
        let mut out = Vec::new();
        for kv in self.undelivered.iter() {
            let (k, v) = kv.map_err(|e| err("cannot read the database", e))?;
            out.push(record::decode_undelivered(&k, &v)?);
        }
        Ok(out)
    }

    fn put_undelivered(&self, u: &Undelivered) -> Result<(), StoreError> {
        self.undelivered
            .insert(
                record::key_bytes(&u.thing),
                &record::encode_undelivered(u)[..],
            )
            .map_err(|e| {
                err(
                    &format!("cannot write a notification for {}", u.thing.jid),
                    e,
                )
            })?;
        Ok(())
    }

    fn delete_undelivered(&self, thing: &ThingKey) -> Result<(), StoreError> {
        self.undelivered
            .remove(record::key_bytes(thing))
            .map_err(|e| {
                err(
                    &format!("cannot delete a notification for {}", thing.jid),
                    e,
                )
            })?;
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::Flush => self
                .db
                .flush()
                .map(|_| ())
                .map_err(|e| err("cannot flush the database", e)),
            Durability::GroupCommit(_) => Ok(()),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| err("cannot flush the database", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::BareJid;
    use crate::tag::Tag;

    fn rec(jid: &str) -> ThingRecord {
        ThingRecord {
            key: ThingKey::of(BareJid::parse(jid).unwrap()),
            last_resource: Some("r".into()),
            owner: None,
            public: false,
            tags: vec![Tag::str("SN", jid).unwrap()],
            claim_digest: None,
        }
    }

    #[test]
    fn reopen_lock_and_format() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path(), Durability::Flush).unwrap();
            s.put(&rec("a@x")).unwrap();
            s.put(&rec("b@x")).unwrap();
            s.delete(&rec("a@x").key).unwrap();
            s.sync().unwrap();
            let again = SledStore::open(dir.path(), Durability::Flush);
            let e = again.err().expect("a second open fails");
            assert!(e.0.contains("in use"), "{e}");
        }
        let s = SledStore::open(dir.path(), Durability::GroupCommit(5)).unwrap();
        assert_eq!(s.load().unwrap(), vec![rec("b@x")]);
        s.db.open_tree("meta")
            .unwrap()
            .insert("format", "other-v9")
            .unwrap();
        s.flush().unwrap();
        drop(s);
        let e = SledStore::open(dir.path(), Durability::Flush)
            .err()
            .unwrap();
        assert!(
            e.0.contains("other-v9") && e.0.contains(record::FORMAT),
            "{e}"
        );
    }

    #[test]
    fn a_v1_database_opens_and_is_marked_v2() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path(), Durability::Flush).unwrap();
            s.put(&rec("a@x")).unwrap();
            s.db.open_tree("meta")
                .unwrap()
                .insert("format", "iotdisco-record-v1")
                .unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), Durability::Flush).unwrap();
        assert_eq!(s.load().unwrap(), vec![rec("a@x")]);
        let mark = s.db.open_tree("meta").unwrap().get("format").unwrap();
        assert_eq!(mark.as_deref(), Some(record::FORMAT.as_bytes()));
    }
}
