//! `demarc serve --flight-sql ADDR`: the lake's tables over Arrow Flight SQL.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use demarc_sql::Lake;
use demarc_sql::flight::{Auth, FlightSql, Tls};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve Arrow Flight SQL on this address, e.g. 127.0.0.1:50051 (port 0: any free
    /// port, printed at start)
    #[arg(long, value_name = "ADDR")]
    flight_sql: SocketAddr,
    /// The lake to serve: a folder or a bucket prefix (s3://…, gs://…)
    #[arg(long, env = "DEMARC_LAKE")]
    lake: String,
    #[command(flatten)]
    store: crate::store::StoreArgs,
    /// Read the token clients must present from this file (default: the environment
    /// variable DEMARC_FLIGHT_TOKEN). Clients send `authorization: Bearer <token>`, or
    /// log in with any user name and the token as password.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

const TOKEN_ENV: &str = "DEMARC_FLIGHT_TOKEN";

pub fn run(args: &ServeArgs) -> Result<()> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file `{}`", path.display()))?,
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) => token,
            Err(_) => bail!(
                "no token: set {TOKEN_ENV} or give --token-file (clients must present it; \
                 generate one with e.g. `openssl rand -hex 32`)"
            ),
        },
    };
    let auth = Auth::new(&token).map_err(anyhow::Error::msg)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            certificate: std::fs::read(cert)
                .with_context(|| format!("cannot read `{}`", cert.display()))?,
            key: std::fs::read(key).with_context(|| format!("cannot read `{}`", key.display()))?,
        }),
        _ => None,
    };
    let place = crate::store::lake(&args.lake, &args.store)?;
    let runtime = crate::sql::runtime()?;
    runtime.block_on(async {
        let lake = Lake::open(&place.place).map_err(|e| anyhow::anyhow!("{}", e.explain()))?;
        let listener = demarc_sql::flight::bind(args.flight_sql)
            .await
            .with_context(|| format!("cannot listen on {}", args.flight_sql))?;
        let address = listener.local_addr()?;
        eprintln!(
            "demarc serve: Flight SQL on {}://{address}, lake {}",
            if tls.is_some() { "grpc+tls" } else { "grpc" },
            args.lake
        );
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            eprintln!("demarc serve: stopping");
        };
        FlightSql::new(lake, auth)
            .serve(listener, tls, shutdown)
            .await
            .map_err(anyhow::Error::msg)
    })
}
