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
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

/// The SQL schema the tables are in: rules write `allow.trusted_domains`.
pub const ALLOW_SCHEMA: &str = "allow";

/// Columns every table has, after its own.
pub const BOOKKEEPING: [&str; 3] = ["owner", "reason", "expires"];

include!(concat!(env!("OUT_DIR"), "/builtin_allow.rs"));

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

#[derive(Debug, Clone)]
struct Row {
    line: usize,
    /// One per column of the table, `None` for an empty value.
    values: Vec<Option<String>>,
    expires_at: DateTime<Utc>,
}

/// A table as read from its text.
#[derive(Debug)]
struct Parsed {
    columns: Vec<String>,
    rows: Vec<Row>,
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
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn expired_row(&self, file: &Path, row: &Row) -> ExpiredRow {
        let value = |name: &str| {
            self.schema
                .index_of(name)
                .ok()
                .and_then(|i| row.values.get(i).cloned().flatten())
                .unwrap_or_default()
        };
        let values = self
            .schema
            .fields()
            .iter()
            .zip(&row.values)
            .filter(|(f, _)| !BOOKKEEPING.contains(&f.name().as_str()))
            .map(|(f, v)| format!("{}={}", f.name(), v.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ");
        ExpiredRow {
            table: self.name.clone(),
            file: file.to_owned(),
            line: row.line,
            owner: value("owner"),
            expires: value("expires"),
            values,
        }
    }
}

/// The table files of `dir`, sorted; other files are left alone.
fn table_files(dir: &Path) -> Result<Vec<PathBuf>, AllowError> {
    let entries = std::fs::read_dir(dir).map_err(|e| AllowError {
        file: dir.to_owned(),
        line: 1,
        message: format!("cannot read the allow folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The SQL name of the table a file holds: its stem.
fn table_name(file: &Path) -> Result<String, AllowError> {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if identifier(stem) {
        Ok(stem.to_owned())
    } else {
        Err(AllowError {
            file: file.to_owned(),
            line: 1,
            message: format!(
                "`{stem}` cannot be a table name: name the file with lower-case letters, digits \
                 and `_`, starting with a letter (e.g. `trusted_domains.csv`)"
            ),
        })
    }
}

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn read(file: &Path) -> Result<String, AllowError> {
    std::fs::read_to_string(file).map_err(|e| AllowError {
        file: file.to_owned(),
        line: 1,
        message: format!("cannot read: {e}"),
    })
}

/// The columns must be identifiers, unique, include the bookkeeping columns and those
/// the built-in rules read.
fn check_columns(file: &Path, columns: &[String], required: &[String]) -> Result<(), AllowError> {
    let error = |message: String| AllowError {
        file: file.to_owned(),
        line: 1,
        message,
    };
    for (i, column) in columns.iter().enumerate() {
        if !identifier(column) {
            return Err(error(format!(
                "column `{column}`: write column names in lower-case letters, digits and `_`"
            )));
        }
        if columns[..i].contains(column) {
            return Err(error(format!("column `{column}` is given twice")));
        }
    }
    let missing: Vec<&str> = BOOKKEEPING
        .iter()
        .copied()
        .chain(required.iter().map(String::as_str))
        .filter(|c| !columns.iter().any(|have| have == c))
        .collect();
    if !missing.is_empty() {
        return Err(error(format!(
            "missing column(s) {}: every row says who owns it (`owner`), why (`reason`) and \
             until when (`expires`){}",
            missing.join(", "),
            if required.is_empty() {
                String::new()
            } else {
                format!(", and the rules read `{}`", required.join("`, `"))
            }
        )));
    }
    Ok(())
}

/// Reads a table file; `required`: the columns the built-in rules read from it.
fn parse(file: &Path, text: &str, required: &[String]) -> Result<Parsed, Vec<AllowError>> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("toml") => parse_toml(file, text, required),
        _ => parse_csv(file, text, required),
    }
}

fn parse_csv(file: &Path, text: &str, required: &[String]) -> Result<Parsed, Vec<AllowError>> {
    let error = |line: usize, message: String| AllowError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let columns: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_owned).collect(),
        Err(e) => return Err(vec![error(1, format!("cannot read the header line: {e}"))]),
    };
    if columns.iter().all(String::is_empty) {
        return Err(vec![error(
            1,
            "the first line must name the columns, e.g. `domain,owner,reason,expires`".to_owned(),
        )]);
    }
    check_columns(file, &columns, required).map_err(|e| vec![e])?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
                let values = record
                    .iter()
                    .map(|v| (!v.is_empty()).then(|| v.to_owned()))
                    .collect();
                match row(&columns, required, values, line) {
                    Ok(row) => rows.push(row),
                    Err(message) => problems.push(error(line, message)),
                }
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
                problems.push(error(line, format!("{e}; quote values that hold a comma")));
            }
        }
    }
    if problems.is_empty() {
        Ok(Parsed { columns, rows })
    } else {
        Err(problems)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTable {
    #[serde(default)]
    rows: Vec<toml::Spanned<BTreeMap<String, toml::Spanned<toml::Value>>>>,
}

fn parse_toml(file: &Path, text: &str, required: &[String]) -> Result<Parsed, Vec<AllowError>> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: TomlTable = toml::from_str(text).map_err(|e| {
        vec![AllowError {
            file: file.to_owned(),
            line: e.span().map_or(1, |s| line_of(s.start)),
            message: format!(
                "{}; a table is a list of `[[rows]]`",
                e.message().trim_end()
            ),
        }]
    })?;
    // Columns: the table's own, sorted, then the bookkeeping ones.
    let mut columns: Vec<String> = Vec::new();
    for row in &table.rows {
        for key in row.get_ref().keys() {
            if !BOOKKEEPING.contains(&key.as_str()) && !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    for column in required {
        if !columns.contains(column) {
            columns.push(column.clone());
        }
    }
    columns.sort();
    columns.extend(BOOKKEEPING.iter().map(|c| (*c).to_owned()));
    check_columns(file, &columns, required).map_err(|e| vec![e])?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for spanned in &table.rows {
        let line = line_of(spanned.span().start);
        let fields = spanned.get_ref();
        let mut values = Vec::with_capacity(columns.len());
        let mut bad = None;
        for column in &columns {
            let value = fields.get(column);
            values.push(match value.map(toml::Spanned::get_ref) {
                None => None,
                Some(toml::Value::String(s)) => (!s.is_empty()).then(|| s.clone()),
                Some(toml::Value::Datetime(d)) => Some(d.to_string()),
                Some(toml::Value::Integer(i)) => Some(i.to_string()),
                Some(toml::Value::Boolean(b)) => Some(b.to_string()),
                Some(other) => {
                    let at = value.map_or(line, |v| line_of(v.span().start));
                    bad.get_or_insert((
                        at,
                        format!(
                            "`{column}` must be text, a number or a date, not {}",
                            other.type_str()
                        ),
                    ));
                    None
                }
            });
        }
        let result = match bad {
            Some(bad) => Err(bad),
            None => row(&columns, required, values, line).map_err(|message| (line, message)),
        };
        match result {
            Ok(row) => rows.push(row),
            Err((line, message)) => problems.push(AllowError {
                file: file.to_owned(),
                line,
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(Parsed { columns, rows })
    } else {
        Err(problems)
    }
}

/// A row with its bookkeeping, and the columns the rules read, checked.
fn row(
    columns: &[String],
    required: &[String],
    values: Vec<Option<String>>,
    line: usize,
) -> Result<Row, String> {
    let get = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| values.get(i).cloned().flatten())
    };
    if let Some(column) = required.iter().find(|c| get(c).is_none()) {
        return Err(format!("`{column}` is empty: the rules read it"));
    }
    for column in ["owner", "reason"] {
        if get(column).is_none() {
            return Err(format!(
                "`{column}` is empty: every row says who owns it and why it is allowed"
            ));
        }
    }
    let Some(expires) = get("expires") else {
        return Err(
            "`expires` is empty: write the last day the row holds, e.g. 2027-06-30".to_owned(),
        );
    };
    let expires_at = expiry(&expires).ok_or_else(|| {
        format!(
            "`expires` is `{expires}`: write a date (2027-06-30, the row holds through that day \
             in UTC) or an RFC 3339 time (2027-06-30T18:00:00Z)"
        )
    })?;
    Ok(Row {
        line,
        values,
        expires_at,
    })
}

/// When a row stops holding: the end of a date, in UTC, or the time given.
fn expiry(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
