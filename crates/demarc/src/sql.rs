//! `demarc sql`, `demarc lake compact` and `demarc rules backtest`: the lake read back.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use demarc_sql::{Format, Lake};

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The lake: the folder or bucket prefix (s3://…, gs://…) `demarc backfill --lake`
    /// or `[lake] path` writes
    #[arg(long, env = "DEMARC_LAKE")]
    lake: String,
    #[command(flatten)]
    store: crate::store::StoreArgs,
    /// The query; without one, the query is read from standard input, or on a terminal
    /// an interactive shell starts
    query: Option<String>,
    /// table (default), csv, json (one object per line) or parquet; from --out's
    /// extension when not given
    #[arg(long)]
    format: Option<Format>,
    /// Write the result to this file instead of standard output
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Merge each partition's files into few large ones (time-sorted, without the
    /// duplicate rows replays leave) and each day's alert files into one; safe while
    /// demarc writes and reads the lake
    Compact {
        /// The lake's folder
        lake: String,
    },
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn sql(args: &SqlArgs) -> Result<()> {
    let query = match &args.query {
        Some(query) => query.clone(),
        None if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the query from standard input")?;
            text
        }
        None => return shell(args),
    };
    let format = args
        .format
        .or_else(|| args.out.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Table);
    if format == Format::Parquet && args.out.is_none() && std::io::stdout().is_terminal() {
        bail!("Parquet is not for a terminal: add --out FILE.parquet or redirect the output");
    }
    let place = crate::store::lake(&args.lake, &args.store)?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let lake = Lake::open(&place.place)?;
        let stream = lake.stream(&query).await?;
        match &args.out {
            Some(path) => {
                let file =
                    std::fs::File::create(path).map_err(|source| demarc_sql::Error::Output {
                        path: path.display().to_string(),
                        source,
                    })?;
                let mut out = std::io::BufWriter::new(file);
                demarc_sql::write(stream, format, &mut out, &query).await
            }
            None => {
                let mut out = std::io::BufWriter::new(std::io::stdout());
                demarc_sql::write(stream, format, &mut out, &query).await
            }
        }
    });
    match result {
        Ok(written) => {
            if let Some(path) = &args.out {
                eprintln!("{} rows written to {}", written.rows, path.display());
            }
            Ok(())
        }
        // `demarc sql … | head` closes the pipe early: not an error.
        Err(demarc_sql::Error::Output { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        Err(error) => bail!("{}", error.explain()),
    }
}

/// The interactive shell, its history in `DEMARC_HISTORY` or `~/.demarc_sql_history`.
fn shell(args: &SqlArgs) -> Result<()> {
    let place = crate::store::lake(&args.lake, &args.store)?;
    let runtime = runtime()?;
    let lake = Lake::open(&place.place).map_err(|e| anyhow::anyhow!("{}", e.explain()))?;
    let history = std::env::var_os("DEMARC_HISTORY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".demarc_sql_history"))
        });
    let format = args.format.unwrap_or(Format::Table);
    demarc_sql::shell(
        &lake,
        &runtime,
        demarc_sql::ShellOptions { history, format },
    )
    .map_err(|e| anyhow::anyhow!("{}", e.explain()))
}

pub fn lake(command: &LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Compact { lake } => compact(lake),
    }
}

fn compact(lake: &str) -> Result<()> {
    if demarc_pipeline::archive::remote::is_url(lake) {
        bail!(
            "`{lake}`: demarc lake compact merges local lakes only so far; a lake in a bucket \
             is read as it is (its files are one per partition and flush)"
        );
    }
    let lake = Path::new(lake);
    if let Err(e) = std::fs::metadata(lake) {
        bail!("cannot read `{}`: {e}", lake.display());
    }
    let done = demarc_lake::compact(lake)
        .with_context(|| format!("cannot compact the lake at `{}`", lake.display()))?;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} partitions merged: {} files -> {}, {:.1} MB -> {:.1} MB, {} duplicate rows and alerts removed",
        done.partitions,
        done.files_before,
        done.files_after,
        mb(done.bytes_before),
        mb(done.bytes_after),
        done.duplicates
    )?;
    Ok(())
}
