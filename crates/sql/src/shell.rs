//! `demarc sql` with no query: an interactive shell like psql or datafusion-cli.
//! Statements end with `;` and may span lines; `\` commands take one line; history is
//! kept across sessions; Ctrl-C cancels the running query (or clears the statement
//! being typed), Ctrl-D leaves.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::{Error, Format, Lake, Result};

const HELP: &str = "\
statements end with ; and may span lines
  \\d            list the tables
  \\d NAME       describe a table's columns
  \\timing       show how long each query takes (on/off)
  \\format F     output as table, csv or json
  \\?            this help
  \\q            quit (or Ctrl-D)
Ctrl-C cancels the running query, or clears the statement being typed.";

/// Where the shell keeps its history, and how it shows results.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    pub history: Option<PathBuf>,
    pub format: Format,
}

/// Reads statements from the terminal until `\q` or Ctrl-D.
pub fn shell(lake: &Lake, runtime: &tokio::runtime::Runtime, options: ShellOptions) -> Result<()> {
    let readline = |e: ReadlineError| Error::Usage(format!("cannot read the terminal: {e}"));
    let mut editor = DefaultEditor::new().map_err(readline)?;
    // Saving writes the history the editor holds: a file that could not be read is left
    // as it is rather than replaced by this session's lines.
    let mut save = options.history.clone();
    if let Some(history) = &options.history {
        match editor.load_history(history) {
            Ok(()) => {}
            // A first session has no history yet.
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "cannot read the history {}: {e}; this session's is not saved",
                    history.display()
                );
                save = None;
            }
        }
    }
    let mut state = State {
        format: options.format,
        timing: false,
    };
    println!("demarc sql: tables `events` and `alerts`; \\? for help, \\q to quit");
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "demarc> "
        } else {
            "     -> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(readline(e)),
        };
        if statement.is_empty() && line.trim_start().starts_with('\\') {
            let _ = editor.add_history_entry(line.trim());
            match command(line.trim(), &mut state) {
                Command::Quit => break,
                Command::Said => {}
                Command::Query(sql) => state.run(lake, runtime, &sql),
            }
            continue;
        }
        if statement.is_empty() && line.trim().is_empty() {
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if ends_statement(&statement) {
            let sql = statement.trim().to_owned();
            let _ = editor.add_history_entry(sql.as_str());
            state.run(lake, runtime, &sql);
            statement.clear();
        }
    }
    if let Some(history) = &save {
        if let Some(parent) = history.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = editor.save_history(history) {
            eprintln!("cannot save the history to {}: {e}", history.display());
        }
    }
    Ok(())
}

struct State {
    format: Format,
    timing: bool,
}

enum Command {
    Quit,
    /// Handled, with its answer printed.
    Said,
    Query(String),
}

fn command(line: &str, state: &mut State) -> Command {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or("");
    let argument = words.next();
    match (name, argument) {
        ("\\q", _) => Command::Quit,
        ("\\?" | "\\h" | "\\help", _) => {
            println!("{HELP}");
            Command::Said
        }
        ("\\timing", _) => {
            state.timing = !state.timing;
            println!("timing is {}", if state.timing { "on" } else { "off" });
            Command::Said
        }
        ("\\format", Some(format)) => {
            match format.parse::<Format>() {
                Ok(Format::Parquet) => println!("parquet is not for a terminal"),
                Ok(format) => {
                    state.format = format;
                    println!("output as {format:?}");
                }
                Err(e) => println!("{e}"),
            }
            Command::Said
        }
        ("\\d", None) => Command::Query(format!(
            "SELECT table_name, table_type FROM information_schema.tables \
             WHERE table_catalog = '{}' AND table_schema = '{}' ORDER BY table_name",
            crate::CATALOG,
            crate::SCHEMA
        )),
        ("\\d", Some(table)) => Command::Query(format!(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
             WHERE table_catalog = '{}' AND table_schema = '{}' AND table_name = '{}' \
             ORDER BY ordinal_position",
            crate::CATALOG,
            crate::SCHEMA,
            table.trim_matches('"').replace('\'', "''")
        )),
        _ => {
            println!("unknown command `{line}`: \\? lists the commands");
            Command::Said
        }
    }
}

impl State {
    /// Runs one statement, printing its result or its error; Ctrl-C cancels it.
    fn run(&self, lake: &Lake, runtime: &tokio::runtime::Runtime, sql: &str) {
        let started = Instant::now();
        let format = self.format;
        let outcome = runtime.block_on(async {
            let query = async {
                let stream = lake.stream(sql).await?;
                let mut out = std::io::stdout();
                crate::write(stream, format, &mut out, sql).await
            };
            tokio::select! {
                result = query => Some(result),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        match outcome {
            None => println!("query cancelled"),
            Some(Ok(written)) => {
                if format == Format::Table {
                    let s = if written.rows == 1 { "" } else { "s" };
                    println!("({} row{s})", written.rows);
                }
            }
            Some(Err(error)) => eprintln!("error: {}", error.explain()),
        }
        if self.timing {
            println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = std::io::stdout().flush();
    }
}

/// Whether `text` ends with a `;` that is not in a string, a quoted name or a comment.
fn ends_statement(text: &str) -> bool {
    let mut last = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                }
                last = Some(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            c => last = Some(c),
        }
    }
    last == Some(';')
}

#[cfg(test)]
mod tests {
    use super::ends_statement;

    #[test]
    fn a_statement_ends_at_a_semicolon_outside_strings_and_comments() {
        assert!(ends_statement("SELECT 1;"));
        assert!(ends_statement("SELECT 1\nFROM events ;  \n"));
        assert!(ends_statement("SELECT 1; -- done\n"));
        assert!(!ends_statement("SELECT 1"));
        assert!(!ends_statement("SELECT ';'"));
        assert!(!ends_statement("SELECT 1 -- ;\n"));
        assert!(!ends_statement("SELECT \"a;\""));
        assert!(ends_statement("SELECT 'it''s';"));
    }
}
