//! Writes generated audit logs to disk, in the layouts the providers deliver:
//! CloudTrail as gzip `{"Records":[…]}` files under
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`, GCP as NDJSON.
//!
//! `demarc-synth cloudtrail --events 1000000 --per-file 300 --out DIR [--seed N]
//! [--violation-rate R --labels FILE] [--allow DIR]`
//! `demarc-synth gcp --events 100000 --per-file 1000 --out DIR [--seed N]`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use demarc_synth::{CloudTrailGenerator, GcpGenerator};

#[derive(Debug, Parser)]
#[command(
    name = "demarc-synth",
    about = "Write deterministic synthetic audit logs"
)]
struct Cli {
    #[command(subcommand)]
    provider: Provider,
}

#[derive(Debug, Subcommand)]
enum Provider {
    /// gzip Records files in the CloudTrail S3 layout
    Cloudtrail(CloudTrailArgs),
    /// NDJSON files as Cloud Logging exports them to GCS
    Gcp(Args),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Total number of events
    #[arg(long)]
    events: usize,
    /// Events per file
    #[arg(long, default_value_t = 300)]
    per_file: usize,
    /// Output directory
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct CloudTrailArgs {
    #[command(flatten)]
    common: Args,
    /// Fraction of events replaced by a violation that must trigger one named rule; as
    /// many more are replaced by near misses that must trigger none (0 to 0.5)
    #[arg(long, default_value_t = 0.0, value_parser = violation_rate)]
    violation_rate: f64,
    /// Write `event_id<TAB>rule_id` for each injected violation to this file
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Write the allow tables of the organisation the events are generated for to this
    /// folder (`trusted_accounts.csv`: its accounts), for `demarc backfill --allow`
    #[arg(long)]
    allow: Option<PathBuf>,
}

fn violation_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=0.5).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 0.5"))
    }
}

fn main() -> Result<()> {
    match Cli::parse().provider {
        Provider::Cloudtrail(args) => cloudtrail(&args),
        Provider::Gcp(args) => gcp(&args),
    }
}

fn cloudtrail(args: &CloudTrailArgs) -> Result<()> {
    let mut generator =
        CloudTrailGenerator::new(args.common.seed).with_violation_rate(args.violation_rate);
    let account = generator.accounts()[0].clone();
    if let Some(dir) = &args.allow {
        let mut table = String::from("account_id,owner,reason,expires\n");
        for id in generator.accounts() {
            table.push_str(&format!(
                "{id},demarc-synth,an account of the generated organisation,2999-12-31\n"
            ));
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join("trusted_accounts.csv");
        std::fs::write(&path, table)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    let root = args
        .common
        .out
        .join(format!("AWSLogs/{account}/CloudTrail/us-east-1"));
    let mut labels = match &args.labels {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            writeln!(writer, "event_id\trule_id")
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            Some((path, writer))
        }
        None => None,
    };
    let mut injected = 0;
    write_files(&args.common, |file_no, events| {
        // As a trail delivers them: a file under the day of its events, named by their
        // time, so that the archive's order is the events' order.
        let (day, stamp) = folder_and_stamp(&generator.clock());
        let dir = root.join(day);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let name = format!("{account}_CloudTrail_us-east-1_{stamp}_{file_no:08}.json.gz");
        let (body, file_labels) = generator.labelled_records_file(events);
        injected += file_labels.len();
        if let Some((path, writer)) = &mut labels {
            for label in &file_labels {
                writeln!(writer, "{}\t{}", label.event_id, label.rule_id)
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
            }
        }
        write_gzip(&dir, &name, &body)
    })?;
    if let Some((path, mut writer)) = labels {
        writer
            .flush()
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!(
            "{injected} injected violations listed in {}",
            path.display()
        );
    }
    Ok(())
}

fn gcp(args: &Args) -> Result<()> {
    let mut generator = GcpGenerator::new(args.seed);
    let root = args.out.join("cloudaudit.googleapis.com/activity");
    write_files(args, |file_no, events| {
        // As Cloud Logging exports them: under the day of the entries, named by hour.
        let clock = generator.clock();
        let (day, _) = folder_and_stamp(&clock);
        let dir = root.join(day);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let hour = &clock[11..13];
        let path = dir.join(format!("{hour}:00:00_{hour}:59:59_S{file_no:08}.json"));
        std::fs::write(&path, generator.ndjson(events))
            .with_context(|| format!("cannot write `{}`", path.display()))
    })
}

/// `YYYY/MM/DD` and `YYYYMMDDTHHMMZ` of a `YYYY-MM-DDTHH:MM:SSZ` time.
fn folder_and_stamp(time: &str) -> (String, String) {
    let (date, clock) = time.split_at(10);
    (
        date.replace('-', "/"),
        format!(
            "{}T{}Z",
            date.replace('-', ""),
            clock[1..6].replace(':', "")
        ),
    )
}

/// Calls `write(file_no, events)` until `--events` are written, `--per-file` at a time.
fn write_files(args: &Args, mut write: impl FnMut(usize, usize) -> Result<()>) -> Result<()> {
    if args.per_file == 0 {
        bail!("--per-file must be at least 1");
    }
    let (mut written, mut file_no) = (0, 0);
    while written < args.events {
        let events = args.per_file.min(args.events - written);
        write(file_no, events)?;
        written += events;
        file_no += 1;
    }
    eprintln!(
        "{written} events in {file_no} files under {}",
        args.out.display()
    );
    Ok(())
}

fn write_gzip(dir: &Path, name: &str, body: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join(name);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .and_then(|mut writer| writer.flush())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::folder_and_stamp;

    #[test]
    fn files_are_filed_under_the_day_and_minute_of_their_events() {
        assert_eq!(
            folder_and_stamp("2026-02-28T23:59:07Z"),
            ("2026/02/28".to_owned(), "20260228T2359Z".to_owned())
        );
    }
}
