//! Allow-lists: tables of what the rules must not alert on (trusted domains,
//! known-public buckets, …), kept as data beside the rules instead of literals in their
//! SQL, so that muting one bucket is a reviewed row with an owner and an end date, not
//! an edit of a detection.
//!
//! A table is one file of an allow folder, `NAME.csv` (a header line, then one row per
//! line) or `NAME.toml` (`[[rows]]` tables), and rules read it as `allow.NAME`. Every
//! row carries `owner`, `reason` and `expires` (`2027-06-30`, through that day in UTC,
//! or an RFC 3339 time); a row past its `expires` is left out of the table, so it stops
//! suppressing, and is reported so that someone renews or deletes it. The tables the
//! built-in rules read ship empty in `allow/`; a folder given at run time fills or
//! replaces them and may add more. [`AllowLists::refresh`] re-reads changed files while
//! the rules run: the next batch sees them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

/// The SQL schema the tables are in: rules write `allow.trusted_domains`.
pub const ALLOW_SCHEMA: &str = "allow";

/// Columns every table has, after its own.
pub const BOOKKEEPING: [&str; 3] = ["owner", "reason", "expires"];

include!(concat!(env!("OUT_DIR"), "/builtin_allow.rs"));

use parse::{Row, parse, read, table_files, table_name};

/// A table file, or a row of one, that cannot be used: where and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct AllowError {
    pub file: PathBuf,
    /// 1-based line (1 when it concerns the whole file).
    pub line: usize,
    pub message: String,
}

/// A row that has passed its `expires`: it no longer suppresses anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredRow {
    pub table: String,
    pub file: PathBuf,
    pub line: usize,
    pub owner: String,
    pub expires: String,
    /// The row's own columns, `name=value`.
    pub values: String,
}

impl fmt::Display for ExpiredRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: allow.{} row ({}) expired {} and no longer suppresses alerts; {} should \
             renew its `expires` or delete it",
            self.file.display(),
            self.line,
            self.table,
            self.values,
            self.expires,
            self.owner
        )
    }
}

/// One row of an allow table as it stands, for reports (`demarc coverage`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AllowEntry {
    pub table: String,
    pub file: PathBuf,
    pub line: usize,
    pub owner: String,
    pub reason: String,
    pub expires: String,
    /// Past its `expires`: it no longer suppresses anything.
    pub expired: bool,
    /// The row's own columns (not the bookkeeping ones), in table order.
    pub values: Vec<(String, String)>,
}

/// What a [`AllowLists::refresh`] changed.
#[derive(Debug, Default)]
pub struct Refresh {
    /// Files read again because they changed.
    pub reloaded: Vec<PathBuf>,
    /// Changed files that could not be used; their tables keep their previous rows.
    pub failed: Vec<AllowError>,
    /// Rows that expired since the last look.
    pub expired: Vec<ExpiredRow>,
}

/// The allow tables, shared by every clone: a refresh through one is seen by all.
#[derive(Debug, Clone)]
pub struct AllowLists {
    tables: Arc<Vec<Table>>,
}

#[derive(Debug)]
struct Table {
    name: String,
    provider: Arc<MemTable>,
    schema: SchemaRef,
    state: Mutex<TableState>,
    /// How many times rows were published, so that plans holding older rows are made
    /// again.
    published: AtomicU64,
}

#[derive(Debug)]
struct TableState {
    file: PathBuf,
    /// The text last read, for files on disk (`None`: built in, never re-read).
    text: Option<String>,
    /// Whether the file could not be read at the last look.
    unreadable: bool,
    rows: Vec<Row>,
    /// Which rows the published table holds.
    published: Vec<bool>,
}

impl AllowLists {
    /// The tables the built-in rules read, empty.
    pub fn builtin() -> Result<Self, Vec<AllowError>> {
        Self::load(None)
    }

    /// The built-in tables, filled or replaced by the `*.csv` and `*.toml` files of
    /// `dir`, which may add tables of their own. Every problem of every file is
    /// reported.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<AllowError>> {
        Self::load_at(dir, Utc::now())
    }

    fn load_at(dir: Option<&Path>, now: DateTime<Utc>) -> Result<Self, Vec<AllowError>> {
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, text) in BUILTIN_ALLOW {
            let path = PathBuf::from(name);
            match table_name(&path) {
                Ok(table) => {
                    sources.insert(
                        table,
                        Source {
                            file: path,
                            text: (*text).to_owned(),
                            on_disk: false,
                            required: Vec::new(),
                        },
                    );
                }
                Err(e) => problems.push(e),
            }
        }
        let builtin_columns = |text: &str, file: &Path| match parse(file, text, &[]) {
            Ok(parsed) => parsed.columns,
            Err(_) => Vec::new(),
        };
        for source in sources.values_mut() {
            source.required = builtin_columns(&source.text, &source.file)
                .into_iter()
                .filter(|c| !BOOKKEEPING.contains(&c.as_str()))
                .collect();
        }
        if let Some(dir) = dir {
            match table_files(dir) {
                Ok(files) => {
                    let mut from_dir: BTreeMap<String, PathBuf> = BTreeMap::new();
                    for file in files {
                        let name = match table_name(&file) {
                            Ok(name) => name,
                            Err(e) => {
                                problems.push(e);
                                continue;
                            }
                        };
                        if let Some(first) = from_dir.insert(name.clone(), file.clone()) {
                            problems.push(AllowError {
                                file: file.clone(),
                                line: 1,
                                message: format!(
                                    "table `{name}` is also given by {}; keep one file per table",
                                    first.display()
                                ),
                            });
                            continue;
                        }
                        match read(&file) {
                            Ok(text) => {
                                let required = sources
                                    .get(&name)
                                    .map(|s| s.required.clone())
                                    .unwrap_or_default();
                                sources.insert(
                                    name,
                                    Source {
                                        file,
                                        text,
                                        on_disk: true,
                                        required,
                                    },
                                );
                            }
                            Err(e) => problems.push(e),
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        let mut tables = Vec::with_capacity(sources.len());
        for (name, source) in sources {
            match Table::new(name, source, now) {
                Ok(table) => tables.push(table),
                Err(mut e) => problems.append(&mut e),
            }
        }
        if problems.is_empty() {
            Ok(Self {
                tables: Arc::new(tables),
            })
        } else {
            Err(problems)
        }
    }

    /// Changes each time a table's rows change: a plan made before holds the old rows.
    pub fn version(&self) -> u64 {
        self.tables
            .iter()
            .map(|t| t.published.load(Ordering::Acquire))
            .sum()
    }

    /// Puts every table in `ctx` as `allow.<name>`.
    pub fn register(&self, ctx: &SessionContext) -> datafusion::error::Result<()> {
        let schema = Arc::new(MemorySchemaProvider::new());
        for table in self.tables.iter() {
            schema.register_table(table.name.clone(), Arc::clone(&table.provider) as _)?;
        }
        let catalog_name = ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "no catalog `{catalog_name}` to put the allow tables in"
            )));
        };
        catalog.register_schema(ALLOW_SCHEMA, schema)?;
        Ok(())
    }

    /// The tables' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tables.iter().map(|t| t.name.as_str()).collect()
    }

    /// Rows now past their `expires`, in every table.
    pub fn expired(&self) -> Vec<ExpiredRow> {
        let now = Utc::now();
        let mut all = Vec::new();
        for table in self.tables.iter() {
            let state = table.lock();
            for row in state.rows.iter().filter(|r| r.expires_at <= now) {
                all.push(table.expired_row(&state.file, row));
            }
        }
        all
    }

    /// Every row of every table (sorted by table, then line), expired ones marked.
    pub fn entries(&self) -> Vec<AllowEntry> {
        let now = Utc::now();
        let mut all = Vec::new();
        for table in self.tables.iter() {
            let state = table.lock();
            for row in &state.rows {
                all.push(table.entry(&state.file, row, now));
            }
        }
        all
    }

    /// How many rows each table holds now, and how many of those have expired.
    pub fn counts(&self) -> Vec<(String, usize, usize)> {
        let now = Utc::now();
        self.tables
            .iter()
            .map(|t| {
                let state = t.lock();
                let expired = state.rows.iter().filter(|r| r.expires_at <= now).count();
                (t.name.clone(), state.rows.len() - expired, expired)
            })
            .collect()
    }

    /// Re-reads the files that changed since they were read, and drops the rows that
    /// expired since the last look. A file that no longer parses, or that lost a
    /// column, leaves its table as it was and is reported: a typo must not unmute
    /// everything, nor stop detection.
    pub fn refresh(&self) -> Refresh {
        self.refresh_at(Utc::now())
    }

    fn refresh_at(&self, now: DateTime<Utc>) -> Refresh {
        let mut out = Refresh::default();
        for table in self.tables.iter() {
            table.refresh(now, &mut out);
        }
        out
    }
}

/// A table's text, before it is parsed.
struct Source {
    file: PathBuf,
    text: String,
    /// Read from a folder (re-read on refresh), not built in.
    on_disk: bool,
    required: Vec<String>,
}

impl Table {
    fn new(name: String, source: Source, now: DateTime<Utc>) -> Result<Self, Vec<AllowError>> {
        let parsed = parse(&source.file, &source.text, &source.required)?;
        let schema = Arc::new(Schema::new(
            parsed
                .columns
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let provider = Arc::new(
            MemTable::try_new(Arc::clone(&schema), vec![Vec::new()]).map_err(|e| {
                vec![AllowError {
                    file: source.file.clone(),
                    line: 1,
                    message: format!("cannot make a table of it: {e}"),
                }]
            })?,
        );
        let table = Self {
            name,
            provider,
            schema,
            published: AtomicU64::new(0),
            state: Mutex::new(TableState {
                file: source.file,
                text: source.on_disk.then(|| source.text.clone()),
                unreadable: false,
                rows: parsed.rows,
                published: Vec::new(),
            }),
        };
        let mut state = table.lock();
        table.publish(&mut state, now);
        drop(state);
        Ok(table)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableState> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refresh(&self, now: DateTime<Utc>, out: &mut Refresh) {
        let mut state = self.lock();
        if let Some(previous) = state.text.clone() {
            let file = state.file.clone();
            match read(&file) {
                // A file removed or unreadable while running: keep its rows, and say so once.
                Err(e) => {
                    if !state.unreadable {
                        state.unreadable = true;
                        out.failed.push(e);
                    }
                }
                Ok(text) if text == previous => state.unreadable = false,
                Ok(text) => {
                    state.unreadable = false;
                    match self.reparse(&file, &text) {
                        Ok(rows) => {
                            state.rows = rows;
                            state.published.clear();
                            out.reloaded.push(file);
                        }
                        Err(e) => out.failed.push(e),
                    }
                    // A broken file is reported once, not on every look.
                    state.text = Some(text);
                }
            }
        }
        let before = state.published.clone();
        let newly: Vec<ExpiredRow> = state
            .rows
            .iter()
            .enumerate()
            .filter(|(i, r)| r.expires_at <= now && before.get(*i).copied().unwrap_or(true))
            .map(|(_, r)| self.expired_row(&state.file, r))
            .collect();
        let changed = state.published.len() != state.rows.len()
            || state
                .rows
                .iter()
                .zip(&state.published)
                .any(|(r, &p)| (r.expires_at > now) != p);
        if changed {
            self.publish(&mut state, now);
        }
        out.expired.extend(newly);
    }

    /// A changed file's rows, if it still has the table's columns.
    fn reparse(&self, file: &Path, text: &str) -> Result<Vec<Row>, AllowError> {
        let columns = self.column_names();
        let own: Vec<String> = columns
            .iter()
            .filter(|c| !BOOKKEEPING.contains(&c.as_str()))
            .cloned()
            .collect();
        let parsed = parse(file, text, &own).map_err(|mut e| e.remove(0))?;
        if parsed.columns != columns {
            return Err(AllowError {
                file: file.to_owned(),
                line: 1,
                message: format!(
                    "the columns changed from {} to {}; the rules were planned against the \
                     first: restart to change a table's columns",
                    columns.join(", "),
                    parsed.columns.join(", ")
                ),
            });
        }
        Ok(parsed.rows)
    }

    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Makes the rows not yet expired the table's content.
    fn publish(&self, state: &mut TableState, now: DateTime<Utc>) {
        state.published = state.rows.iter().map(|r| r.expires_at > now).collect();
        let live: Vec<&Row> = state
            .rows
            .iter()
            .zip(&state.published)
            .filter_map(|(r, &p)| p.then_some(r))
            .collect();
        let columns: Vec<ArrayRef> = (0..self.schema.fields().len())
            .map(|c| {
                Arc::new(StringArray::from_iter(
                    live.iter().map(|r| r.values.get(c).cloned().flatten()),
                )) as ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .expect("one string column per field, each as long as the live rows");
        let partition = &self.provider.batches[0];
        // Readers hold the partition only while a query is planned; wait them out.
        loop {
            if let Ok(mut batches) = partition.try_write() {
                *batches = vec![batch];
                self.published.fetch_add(1, Ordering::AcqRel);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A row as the coverage report shows it.
    fn entry(&self, file: &Path, row: &Row, now: DateTime<Utc>) -> AllowEntry {
        let mut entry = AllowEntry {
            table: self.name.clone(),
            file: file.to_owned(),
            line: row.line,
            owner: String::new(),
            reason: String::new(),
            expires: String::new(),
            expired: row.expires_at <= now,
            values: Vec::new(),
        };
        for (field, value) in self.schema.fields().iter().zip(&row.values) {
            let value = value.clone().unwrap_or_default();
            match field.name().as_str() {
                "owner" => entry.owner = value,
                "reason" => entry.reason = value,
                "expires" => entry.expires = value,
                name => entry.values.push((name.to_owned(), value)),
            }
        }
        entry
    }

    fn expired_row(&self, file: &Path, row: &Row) -> ExpiredRow {
        let entry = self.entry(file, row, Utc::now());
        ExpiredRow {
            table: entry.table,
            file: entry.file,
            line: entry.line,
            owner: entry.owner,
            expires: entry.expires,
            values: entry
                .values
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

mod parse;
#[cfg(test)]
mod tests;
