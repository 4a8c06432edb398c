//! `demarc-bench`: demarc's benchmarks that need more than `cargo bench` gives, kept out
//! of the product binary. Run through the scripts in `bench/`.

mod routing;
mod stream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// As in the product binary, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "demarc-bench", about = "demarc's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The streaming benchmark: the pipeline alone, a bare consumer and `demarc run` on
    /// Apache Kafka, and produce-to-alert latency at a fixed rate
    Stream(stream::StreamArgs),
    /// Alert routing: alerts/s through 3 routes and 4 sinks, and the latency routing
    /// adds per batch at a steady rate
    Routing(routing::RoutingArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stream(args) => stream::run(&args),
        Command::Routing(args) => routing::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
