//! The Flight SQL service through the Rust Flight SQL client (`FlightSqlServiceClient`),
//! over a real gRPC connection on loopback: login, queries, prepared statements with a
//! parameter, the metadata BI tools read, refusals, and new lake files.

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use common::fixture_lake;
use demarc_sql::Lake;
use demarc_sql::flight::{Auth, FlightSql};
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A server on a free port over the lake at `root`, and its address.
async fn serve(root: &std::path::Path) -> String {
    let lake = Lake::open(root).expect("lake");
    let listener = demarc_sql::flight::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = FlightSql::new(lake, Auth::new(TOKEN).expect("token"));
    tokio::spawn(server.serve(listener, None, std::future::pending()));
    format!("http://{address}")
}

async fn client(address: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Endpoint::from_shared(address.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    FlightSqlServiceClient::new(channel)
}

async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_owned(), None).await.expect("execute");
    fetch(client, info).await
}

fn int(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(
                b.column_by_name(column).expect("column"),
                &arrow::datatypes::DataType::Utf8,
            )
            .expect("text");
            let c = c.as_string::<i32>().clone();
            (0..c.len()).map(move |i| c.value(i).to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_logs_in_queries_prepares_and_reads_the_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let address = serve(&root).await;
    let mut client = client(&address).await;

    // Basic -> Bearer: any user name, the token as password.
    let token = client.handshake("analyst", TOKEN).await.expect("handshake");
    assert_eq!(token.as_ref(), TOKEN.as_bytes());
    assert_eq!(
        int(&query(&mut client, "SELECT count(*) FROM events").await),
        7
    );

    // A prepared statement with a parameter.
    let mut prepared = client
        .prepare(
            "SELECT event_id FROM events WHERE operation = ? ORDER BY time".into(),
            None,
        )
        .await
        .expect("prepare");
    let parameters = prepared.parameter_schema().expect("parameters").clone();
    assert_eq!(parameters.fields().len(), 1);
    let value = RecordBatch::try_new(
        std::sync::Arc::new(parameters),
        vec![std::sync::Arc::new(arrow::array::StringArray::from(vec![
            "StopLogging",
        ]))],
    )
    .expect("parameter batch");
    prepared.set_parameters(value).expect("bind");
    let info = prepared.execute().await.expect("execute prepared");
    let rows = fetch(&mut client, info).await;
    assert_eq!(strings(&rows, "event_id"), vec!["e-1", "e-4"]);
    prepared.close().await.expect("close");

    // Metadata: SqlInfo says read-only, one catalog and schema, two tables with columns.
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::FlightSqlServerName,
        ])
        .await
        .expect("sql info");
    let rows = fetch(&mut client, info).await;
    assert_eq!(rows[0].num_rows(), 2);
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    let rows = fetch(&mut client, info).await;
    assert_eq!(strings(&rows, "catalog_name"), vec!["demarc"]);
    assert_eq!(strings(&rows, "db_schema_name"), vec!["lake"]);
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: Some("e%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let rows = fetch(&mut client, info).await;
    assert_eq!(strings(&rows, "table_name"), vec!["events"]);
    let schema_bytes = rows[0]
        .column_by_name("table_schema")
        .expect("table_schema")
        .as_binary::<i32>()
        .value(0)
        .to_vec();
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(&schema_bytes).expect("schema");
    assert!(schema.field_with_name("actor_principal").is_ok());
    assert!(schema.field_with_name("hour").is_ok());

    // A file written now is in the next answer.
    common::write_a_later_event(&root);
    assert_eq!(
        int(&query(&mut client, "SELECT count(*) FROM events").await),
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_nothing_and_writes_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let address = serve(&root).await;

    let mut anonymous = client(&address).await;
    let error = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("no token");
    assert_unauthenticated(&error);
    let error = anonymous
        .handshake("analyst", "wrong")
        .await
        .expect_err("bad password");
    assert_unauthenticated(&error);
    anonymous.set_token("not-the-token-0123456789".into());
    let error = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("bad token");
    assert_unauthenticated(&error);

    let mut analyst = client(&address).await;
    analyst.set_token(TOKEN.into());
    for (sql, refusal) in [
        ("DROP TABLE events", "DDL not supported"),
        ("CREATE TABLE t AS SELECT 1", "DDL not supported"),
        (
            "INSERT INTO alerts SELECT * FROM alerts",
            "DML not supported",
        ),
        (
            "COPY (SELECT 1) TO '/tmp/demarc-flight-never.csv'",
            "DML not supported: COPY",
        ),
        (
            "SET datafusion.execution.batch_size = 1",
            "Statement not supported",
        ),
    ] {
        let error = analyst.execute(sql.into(), None).await.expect_err(sql);
        assert!(error.to_string().contains(refusal), "{sql}: {error}");
        assert!(
            error.to_string().contains("invalid argument"),
            "{sql}: {error}"
        );
    }
    assert!(!std::path::Path::new("/tmp/demarc-flight-never.csv").exists());
    // A query that fails on the data while it runs is the client's mistake too, not
    // the server's.
    let info = analyst
        .execute("SELECT CAST(event_id AS INT) FROM events".into(), None)
        .await
        .expect("planned");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let error = match analyst.do_get(ticket).await {
        Err(error) => error.to_string(),
        Ok(stream) => stream
            .try_collect::<Vec<_>>()
            .await
            .expect_err("the cast fails")
            .to_string(),
    };
    assert!(
        error.contains("invalid argument") && error.contains("Cannot cast"),
        "{error}"
    );
    assert_eq!(
        int(&query(&mut analyst, "SELECT count(*) FROM events").await),
        7
    );
}

/// A test CA, and a certificate it signed for `localhost` and 127.0.0.1 with its key,
/// made with the openssl CLI: (CA, certificate, key), PEM.
fn certificate(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=demarc test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    let read = |name: &str| std::fs::read(dir.join(name)).expect("pem");
    (read("ca.pem"), read("cert.pem"), read("key.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_a_client_that_trusts_the_certificate_queries_and_plain_grpc_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fixture_lake(dir.path()).await;
    let (ca, cert, key) = certificate(dir.path());
    let listener = demarc_sql::flight::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = FlightSql::new(
        Lake::open(&root).expect("lake"),
        Auth::new(TOKEN).expect("token"),
    );
    let tls = demarc_sql::flight::Tls {
        certificate: cert,
        key,
    };
    tokio::spawn(server.serve(listener, Some(tls), std::future::pending()));

    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("endpoint")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
                .domain_name("localhost"),
        )
        .expect("tls config")
        .connect()
        .await
        .expect("TLS connect");
    let mut secure = FlightSqlServiceClient::new(channel);
    secure.set_token(TOKEN.into());
    assert_eq!(
        int(&query(&mut secure, "SELECT count(*) FROM events").await),
        7
    );

    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect_lazy();
    let mut plain = FlightSqlServiceClient::new(channel);
    plain.set_token(TOKEN.into());
    assert!(plain.execute("SELECT 1".into(), None).await.is_err());
}

/// tonic's message for `Code::Unauthenticated`.
fn assert_unauthenticated(error: &impl std::fmt::Display) {
    assert!(
        error
            .to_string()
            .contains("valid authentication credentials"),
        "{error}"
    );
}
