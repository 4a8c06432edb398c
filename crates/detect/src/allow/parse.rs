//! Reading allow-table files: CSV and TOML rows, their columns and bookkeeping
//! (`owner`, `reason`, `expires`) checked, every problem with its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{AllowError, BOOKKEEPING};

#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) line: usize,
    /// One per column of the table, `None` for an empty value.
    pub(super) values: Vec<Option<String>>,
    pub(super) expires_at: DateTime<Utc>,
}

/// A table as read from its text.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Row>,
}

/// The table files of `dir`, sorted; other files are left alone.
pub(super) fn table_files(dir: &Path) -> Result<Vec<PathBuf>, AllowError> {
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
pub(super) fn table_name(file: &Path) -> Result<String, AllowError> {
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

pub(super) fn read(file: &Path) -> Result<String, AllowError> {
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
pub(super) fn parse(
    file: &Path,
    text: &str,
    required: &[String],
) -> Result<Parsed, Vec<AllowError>> {
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
pub(super) fn expiry(text: &str) -> Option<DateTime<Utc>> {
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
