//! The alert store: one SQLite file (WAL, fully synced commits) holding the spool of
//! notices not yet confirmed by their sink, the suppression windows, the snoozes, and
//! the notices a sink refused for good. The running process and `demarc alerts` open it
//! together: a snooze written by the command is read by the process within a second.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::notice::Notice;
use crate::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    notice BLOB NOT NULL,
    queued_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS spool_by_sink ON spool (sink, seq);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    notice BLOB NOT NULL,
    status INTEGER,
    response TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    key TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    notice BLOB NOT NULL,
    sinks TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    closes_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_by_close ON windows (closes_ms);
CREATE TABLE IF NOT EXISTS snoozes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    keys TEXT NOT NULL,
    reason TEXT NOT NULL,
    by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    removed_ms INTEGER
);
";

/// A notice in the spool.
#[derive(Debug, Clone)]
pub struct Spooled {
    pub seq: i64,
    pub notice: Notice,
}

/// A notice a sink refused for good, on its way to the dead-letter output.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub seq: i64,
    pub sink: String,
    /// The notice as spooled (demarc JSON).
    pub notice: Vec<u8>,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The response body or the error, cut to 4 KiB.
    pub response: String,
}

/// An open suppression window of one dedup key.
#[derive(Debug, Clone)]
pub struct Window {
    pub key: String,
    pub rule: String,
    /// The first alert of the window, as it was delivered.
    pub notice: Notice,
    /// The sinks the first alert went to, by name.
    pub sinks: Vec<String>,
    pub closes_ms: i64,
    pub count: u64,
    pub last_seen: String,
}

/// A snooze: alerts of `rule` (a glob) whose dedup values include every `keys` pair
/// reach file sinks only, marked, until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snooze {
    pub id: i64,
    pub rule: String,
    pub keys: Vec<(String, String)>,
    pub reason: String,
    pub by: String,
    pub created_ms: i64,
    pub until_ms: i64,
    pub removed_ms: Option<i64>,
}

/// One connection to the store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A notice as the spool keeps it: encoded once, queued for each of its sinks.
pub fn encode(notice: &Notice) -> Vec<u8> {
    // A notice always serializes: its maps have string keys.
    serde_json::to_vec(notice).unwrap_or_default()
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |e| Error::store("open", path, e);
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(fail)?;
        // WAL: readers and one writer at a time, across processes; FULL: every commit
        // is on disk before it returns.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |e| Error::store(action, &self.path, e)
    }

    /// Starts a transaction: everything in it is on disk once `commit` returns, or none
    /// of it is.
    pub fn transaction(&mut self) -> Result<Tx<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::store("begin a transaction in", &path, e))?;
        Ok(Tx { tx, path })
    }

    /// The next `limit` notices spooled for `sink`, oldest first.
    pub fn next(&self, sink: &str, limit: usize) -> Result<Vec<Spooled>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, notice FROM spool WHERE sink = ?1 ORDER BY seq LIMIT ?2")
            .map_err(self.fail("read the spool in"))?;
        let rows = stmt
            .query_map(params![sink, limit as i64], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(self.fail("read the spool in"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, body) = row.map_err(self.fail("read the spool in"))?;
            let notice = serde_json::from_slice(&body).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                what: format!("spooled notice {seq}: {e}"),
            })?;
            out.push(Spooled { seq, notice });
        }
        Ok(out)
    }

    /// The sink confirmed these notices: they leave the spool.
    pub fn delivered(&mut self, seqs: &[i64]) -> Result<()> {
        let tx = self.transaction()?;
        for seq in seqs {
            tx.tx
                .execute("DELETE FROM spool WHERE seq = ?1", [seq])
                .map_err(|e| Error::store("update the spool in", &tx.path, e))?;
        }
        tx.commit()
    }

    /// A failed attempt: counted, with its error, in the spool's row (for whoever opens
    /// the store to see why a notice waits; `demarc alerts spool` does not show it yet).
    pub fn attempted(&self, seq: i64, error: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE spool SET attempts = attempts + 1, last_error = ?2 WHERE seq = ?1",
                params![seq, error],
            )
            .map_err(self.fail("update the spool in"))?;
        Ok(())
    }

    /// The sink refused the notice for good: it moves from the spool to the rejected
    /// notices, in one transaction.
    pub fn reject(&mut self, seq: i64, status: Option<u16>, response: &str) -> Result<()> {
        let tx = self.transaction()?;
        let fail = |e| Error::store("move a refused notice in", &tx.path, e);
        tx.tx
            .execute(
                "INSERT INTO rejected (sink, notice, status, response, at_ms) \
                 SELECT sink, notice, ?2, ?3, ?4 FROM spool WHERE seq = ?1",
                params![seq, status, response, now_ms()],
            )
            .map_err(fail)?;
        tx.tx
            .execute("DELETE FROM spool WHERE seq = ?1", [seq])
            .map_err(|e| Error::store("move a refused notice in", &tx.path, e))?;
        tx.commit()
    }

    /// Moves everything spooled for sinks not in `known` to the rejected notices (a
    /// sink removed from the configuration); how many, by sink.
    pub fn reject_unknown_sinks(&mut self, known: &[String]) -> Result<Vec<(String, u64)>> {
        let orphans: Vec<(String, u64)> = self
            .depths()?
            .into_iter()
            .filter(|(sink, _, _)| !known.contains(sink))
            .map(|(sink, n, _)| (sink, n))
            .collect();
        for (sink, _) in &orphans {
            let tx = self.transaction()?;
            let fail = |e| Error::store("move notices of a removed sink in", &tx.path, e);
            tx.tx
                .execute(
                    "INSERT INTO rejected (sink, notice, status, response, at_ms) \
                     SELECT sink, notice, NULL, ?2, ?3 FROM spool WHERE sink = ?1",
                    params![sink, "the sink is no longer in the configuration", now_ms()],
                )
                .map_err(fail)?;
            tx.tx
                .execute("DELETE FROM spool WHERE sink = ?1", [sink])
                .map_err(|e| Error::store("move notices of a removed sink in", &tx.path, e))?;
            tx.commit()?;
        }
        Ok(orphans)
    }

    /// Refused notices not yet written to the dead-letter output, oldest first.
    pub fn rejected(&self, limit: usize) -> Result<Vec<Rejected>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, sink, notice, status, response FROM rejected ORDER BY seq LIMIT ?1",
            )
            .map_err(self.fail("read the refused notices in"))?;
        let rows = stmt
            .query_map([limit as i64], |row| {
                Ok(Rejected {
                    seq: row.get(0)?,
                    sink: row.get(1)?,
                    notice: row.get(2)?,
                    status: row.get(3)?,
                    response: row.get(4)?,
                })
            })
            .map_err(self.fail("read the refused notices in"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.fail("read the refused notices in"))
    }

    /// The refused notices are on the dead-letter output: forgotten here.
    pub fn forget_rejected(&mut self, seqs: &[i64]) -> Result<()> {
        let tx = self.transaction()?;
        for seq in seqs {
            tx.tx
                .execute("DELETE FROM rejected WHERE seq = ?1", [seq])
                .map_err(|e| Error::store("update the refused notices in", &tx.path, e))?;
        }
        tx.commit()
    }

    /// Per sink: notices spooled and the time the oldest was queued (ms).
    pub fn depths(&self) -> Result<Vec<(String, u64, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sink, count(*), min(queued_ms) FROM spool GROUP BY sink")
            .map_err(self.fail("read the spool in"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64, row.get(2)?))
            })
            .map_err(self.fail("read the spool in"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.fail("read the spool in"))
    }

    /// Records a snooze; its id.
    pub fn snooze(
        &self,
        rule: &str,
        keys: &[(String, String)],
        reason: &str,
        by: &str,
        until_ms: i64,
    ) -> Result<i64> {
        let keys = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO snoozes (rule, keys, reason, by, created_ms, until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![rule, keys, reason, by, now_ms(), until_ms],
            )
            .map_err(self.fail("record a snooze in"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Ends snooze `id` now; false if there is no such snooze in effect.
    pub fn unsnooze(&self, id: i64) -> Result<bool> {
        let now = now_ms();
        let changed = self
            .conn
            .execute(
                "UPDATE snoozes SET removed_ms = ?2 \
                 WHERE id = ?1 AND removed_ms IS NULL AND until_ms > ?2",
                params![id, now],
            )
            .map_err(self.fail("end a snooze in"))?;
        Ok(changed == 1)
    }

    /// Snoozes in effect at `now_ms`; with `all`, ended ones too.
    pub fn snoozes(&self, now_ms: i64, all: bool) -> Result<Vec<Snooze>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, rule, keys, reason, by, created_ms, until_ms, removed_ms FROM snoozes \
                 WHERE ?2 OR (removed_ms IS NULL AND until_ms > ?1) ORDER BY id",
            )
            .map_err(self.fail("read the snoozes in"))?;
        let rows = stmt
            .query_map(params![now_ms, all], |row| {
                let keys: String = row.get(2)?;
                Ok(Snooze {
                    id: row.get(0)?,
                    rule: row.get(1)?,
                    keys: serde_json::from_str(&keys).unwrap_or_default(),
                    reason: row.get(3)?,
                    by: row.get(4)?,
                    created_ms: row.get(5)?,
                    until_ms: row.get(6)?,
                    removed_ms: row.get(7)?,
                })
            })
            .map_err(self.fail("read the snoozes in"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.fail("read the snoozes in"))
    }

    /// Open windows that close at or before `now_ms`.
    pub fn due_windows(&self, now_ms: i64) -> Result<Vec<Window>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, rule, notice, sinks, closes_ms, count, last_seen FROM windows \
                 WHERE closes_ms <= ?1 ORDER BY closes_ms",
            )
            .map_err(self.fail("read the suppression windows in"))?;
        let rows = stmt
            .query_map([now_ms], window_row)
            .map_err(self.fail("read the suppression windows in"))?;
        let mut out = Vec::new();
        for row in rows {
            let raw = row.map_err(self.fail("read the suppression windows in"))?;
            out.push(parse_window(&self.path, raw)?);
        }
        Ok(out)
    }
}

struct RawWindow {
    key: String,
    rule: String,
    notice: Vec<u8>,
    sinks: String,
    closes_ms: i64,
    count: i64,
    last_seen: String,
}

fn parse_window(path: &Path, raw: RawWindow) -> Result<Window> {
    let corrupt = |e: String| Error::Corrupt {
        path: path.to_owned(),
        what: format!("suppression window {}: {e}", raw.key),
    };
    Ok(Window {
        notice: serde_json::from_slice(&raw.notice).map_err(|e| corrupt(e.to_string()))?,
        sinks: serde_json::from_str(&raw.sinks).map_err(|e| corrupt(e.to_string()))?,
        key: raw.key,
        rule: raw.rule,
        closes_ms: raw.closes_ms,
        count: raw.count.max(0) as u64,
        last_seen: raw.last_seen,
    })
}

fn window_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawWindow> {
    Ok(RawWindow {
        key: row.get(0)?,
        rule: row.get(1)?,
        notice: row.get(2)?,
        sinks: row.get(3)?,
        closes_ms: row.get(4)?,
        count: row.get(5)?,
        last_seen: row.get(6)?,
    })
}

/// A transaction on the store.
#[derive(Debug)]
pub struct Tx<'s> {
    tx: rusqlite::Transaction<'s>,
    path: PathBuf,
}

impl Tx<'_> {
    fn fail(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |e| Error::store(action, &self.path, e)
    }

    /// Queues a notice, as [`encode`] gives it, for `sink`.
    pub fn enqueue(&self, sink: &str, body: &[u8], now_ms: i64) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO spool (sink, notice, queued_ms) VALUES (?1, ?2, ?3)")
            .and_then(|mut stmt| stmt.execute(params![sink, body, now_ms]))
            .map_err(self.fail("spool an alert in"))?;
        Ok(())
    }

    /// The open window of `key`, if any.
    pub fn window(&self, key: &str) -> Result<Option<Window>> {
        let raw = self
            .tx
            .prepare_cached(
                "SELECT key, rule, notice, sinks, closes_ms, count, last_seen FROM windows \
                 WHERE key = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([key], window_row).optional())
            .map_err(self.fail("read the suppression windows in"))?;
        raw.map(|raw| parse_window(&self.path, raw)).transpose()
    }

    /// Opens a window (or replaces the one of the same key).
    pub fn open_window(&self, window: &Window, now_ms: i64) -> Result<()> {
        let notice = serde_json::to_vec(&window.notice).unwrap_or_default();
        let sinks = serde_json::to_string(&window.sinks).unwrap_or_else(|_| "[]".into());
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO windows \
                 (key, rule, notice, sinks, opened_ms, closes_ms, count, last_seen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    window.key,
                    window.rule,
                    notice,
                    sinks,
                    now_ms,
                    window.closes_ms,
                    window.count as i64,
                    window.last_seen
                ])
            })
            .map_err(self.fail("open a suppression window in"))?;
        Ok(())
    }

    /// Counts a repeat in the window of `key`.
    pub fn count_repeat(&self, key: &str, last_seen: &str) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE windows SET count = count + 1, last_seen = ?2 WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute(params![key, last_seen]))
            .map_err(self.fail("count a repeat in"))?;
        Ok(())
    }

    /// Closes the window of `key`.
    pub fn close_window(&self, key: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM windows WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .map_err(self.fail("close a suppression window in"))?;
        Ok(())
    }

    /// Makes the transaction durable.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tx
            .commit()
            .map_err(|e| Error::store("commit to", &path, e))
    }
}
