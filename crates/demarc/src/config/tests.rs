use super::*;

const MINIMAL: &str =
    "[kafka]\nbrokers = \"localhost:9092\"\ngroup_id = \"demarc\"\ntopics = [\"cloudtrail\"]\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("demarc.toml"))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn minimal_config_gets_defaults() {
    let config = parse(MINIMAL).expect("valid");
    assert_eq!(config.kafka.topics, vec!["cloudtrail"]);
    assert_eq!(config.kafka.batch_records, 10_000);
    assert_eq!(config.kafka.batch_wait, Duration::from_millis(25));
    assert_eq!(config.kafka.dead_letter_topic, "demarc-dead-letter");
    assert!(config.alerts_stdout);
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9464".parse().expect("address"))
    );
}

#[test]
fn unknown_field_names_its_line() {
    let text = format!("{MINIMAL}[batch]\nmax_record = 5\n");
    let message = error(&text);
    assert!(message.starts_with("demarc.toml:6: "), "{message}");
    assert!(message.contains("max_record"), "{message}");
}

#[test]
fn inline_secret_is_refused_with_the_fix() {
    let text = format!("{MINIMAL}[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n");
    let message = error(&text);
    assert!(message.starts_with("demarc.toml:6: "), "{message}");
    assert!(message.contains("env = "), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    // Every alias of a secret, too.
    for key in [
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "ssl.keystore.password",
    ] {
        let text = format!("{MINIMAL}[kafka.properties]\n\"{key}\" = \"hunter2\"\n");
        let message = error(&text);
        assert!(message.starts_with("demarc.toml:6: "), "{key}: {message}");
        assert!(message.contains("is a secret"), "{key}: {message}");
    }
}

#[test]
fn librdkafka_property_errors_name_the_line_without_the_value() {
    let text = format!(
        "{MINIMAL}[kafka.properties]\n\"session.timeout.ms\" = 9000\n\
         \"fetch.wait.max.ms\" = \"soon\"\n"
    );
    let message = error(&text);
    assert!(
        message.starts_with("demarc.toml:7: librdkafka refuses `fetch.wait.max.ms`"),
        "{message}"
    );
    assert!(!message.contains("soon"), "{message}");
    let text = format!("{MINIMAL}[kafka.properties]\n\"no.such.property\" = 1\n");
    let message = error(&text);
    assert!(
        message.starts_with("demarc.toml:6: librdkafka refuses `no.such.property`"),
        "{message}"
    );
}

#[test]
fn a_topic_pattern_matching_the_dead_letter_topic_is_refused() {
    let text = "[kafka]\nbrokers = \"b:9092\"\ngroup_id = \"g\"\n\
                topics = [\"^demarc-.*\"]\n";
    let message = error(text);
    assert!(
        message.starts_with("demarc.toml:4: kafka.topics"),
        "{message}"
    );
    assert!(message.contains("demarc-dead-letter"), "{message}");
    let text = "[kafka]\nbrokers = \"b:9092\"\ngroup_id = \"g\"\n\
                topics = [\"^cloudtrail-.*\"]\n";
    assert!(parse(text).is_ok());
}

#[test]
fn secrets_come_from_environment_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("password"), "s3cret\n").expect("write");
    let text = format!(
        "{MINIMAL}[kafka.properties]\n\"sasl.password\" = {{ file = \"password\" }}\n\
         \"sasl.username\" = {{ env = \"DEMARC_TEST_CONFIG_USER\" }}\n\"fetch.wait.max.ms\" = 50\n"
    );
    let path = dir.path().join("demarc.toml");
    let missing = Config::parse(&text, &path).expect_err("variable not set");
    assert!(
        missing.to_string().contains("DEMARC_TEST_CONFIG_USER"),
        "{missing}"
    );
    assert_eq!(missing.line, Some(7));
    // PATH is set in every test environment.
    let text = text.replace("DEMARC_TEST_CONFIG_USER", "PATH");
    let config = Config::parse(&text, &path).expect("valid");
    assert_eq!(config.kafka.properties["sasl.password"], "s3cret");
    assert_eq!(
        config.kafka.properties["sasl.username"],
        std::env::var("PATH").expect("PATH")
    );
    assert_eq!(config.kafka.properties["fetch.wait.max.ms"], "50");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn owned_properties_and_bad_values_are_refused() {
    let text = format!("{MINIMAL}[kafka.properties]\n\"enable.auto.commit\" = true\n");
    assert!(error(&text).contains("set by demarc"));
    let text = format!("{MINIMAL}[batch]\nmax_records = 0\n");
    assert!(error(&text).starts_with("demarc.toml:6: batch.max_records"));
    let text = format!("{MINIMAL}[metrics]\nlisten = \"localhost\"\n");
    assert!(error(&text).contains("IP:PORT"));
    let text = format!("{MINIMAL}[dead_letter]\ntopic = \"cloudtrail\"\n");
    assert!(error(&text).contains("other than the input topics"));
    let text = format!("{MINIMAL}[alerts]\nstdout = false\n");
    assert!(error(&text).contains("nowhere"));
    let text = "[kafka]\nbrokers = \"\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n";
    assert!(error(text).starts_with("demarc.toml:2: kafka.brokers"));
}

const ROUTED: &str = r#"
[spool]
path = "state/alerts.db"
max_alerts = 5000

[suppression]
window = "30m"
rules = { "aws-root-*" = "0" }

[sinks.soc]
type = "webhook"
url = "https://siem.example/hook"
format = "ocsf"
secret = { env = "DEMARC_TEST_WEBHOOK_SECRET" }
headers = { "x-team" = "soc" }

[sinks.archive]
type = "file"
path = "alerts.jsonl"

[[routes]]
name = "urgent"
min_severity = "high"
rules = ["aws-*"]
sinks = ["soc"]
continue = true

[default_route]
sinks = ["archive"]
"#;

#[test]
fn routes_sinks_and_suppression_are_read() {
    let text = format!(
        "{MINIMAL}{}",
        ROUTED.replace(
            "{ env = \"DEMARC_TEST_WEBHOOK_SECRET\" }",
            "{ file = \"secret.txt\" }"
        )
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("secret.txt"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    )
    .expect("write");
    let config = Config::parse(&text, &dir.path().join("demarc.toml")).expect("valid");
    let plan = config.routing.expect("routing");
    assert_eq!(plan.store, dir.path().join("state/alerts.db"));
    assert_eq!(plan.capacity, 5000);
    assert_eq!(
        plan.suppression.window("aws-s3-public"),
        Duration::from_secs(1800)
    );
    assert_eq!(plan.suppression.window("aws-root-login"), Duration::ZERO);
    let names: Vec<&str> = plan.sinks.iter().map(|s| s.name.as_str()).collect();
    // Sinks by name; routes point at them by index.
    assert_eq!(names, ["archive", "soc"]);
    assert_eq!(plan.routes.routes[0].sinks, [1]);
    assert!(plan.routes.routes[0].continue_matching);
    assert_eq!(plan.routes.default, [0]);
    match &plan.sinks[1].kind {
        SinkKind::Webhook { secret, target, .. } => {
            assert_eq!(
                secret.as_ref().map(Vec::len),
                Some(24),
                "the decoded whsec_ key"
            );
            assert_eq!(target.headers, [("x-team".to_owned(), "soc".to_owned())]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn routing_mistakes_name_their_line_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret.txt"), "s3cret").expect("write");
    std::fs::write(dir.path().join("empty.txt"), "\n").expect("write");
    let with = |from: &str, to: &str| {
        let text = format!(
            "{MINIMAL}{}",
            ROUTED
                .replace(
                    "{ env = \"DEMARC_TEST_WEBHOOK_SECRET\" }",
                    "{ file = \"secret.txt\" }"
                )
                .replace(from, to)
        );
        match Config::parse(&text, &dir.path().join("demarc.toml")) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(e) => (e.line, e.message),
        }
    };
    // Lines: [spool] 6, window 11, [sinks.soc] 14, url 16, format 17, secret 18,
    // [sinks.archive] 21, its type 22, min_severity 27, the route's sinks 29.
    let cases = [
        (
            with("sinks = [\"soc\"]", "sinks = [\"socc\"]"),
            29,
            "no sink is named `socc`",
        ),
        (
            with("format = \"ocsf\"", "format = \"cef\""),
            17,
            "expected demarc or ocsf",
        ),
        (
            with("window = \"30m\"", "window = \"30\""),
            11,
            "is not a duration",
        ),
        (
            with("min_severity = \"high\"", "min_severity = \"urgent\""),
            27,
            "unknown severity `urgent`",
        ),
        (
            with("secret = { file = \"secret.txt\" }", "secret = \"hunter2\""),
            18,
            "is a secret",
        ),
        (with("secret.txt", "empty.txt"), 18, "the secret is empty"),
        (
            with("type = \"file\"", "type = \"email\""),
            22,
            "not a sink type",
        ),
        (
            with("[default_route]\nsinks = [\"archive\"]", ""),
            21,
            "`archive` is not used by any route",
        ),
        (
            with("[spool]\npath = \"state/alerts.db\"\nmax_alerts = 5000", ""),
            19,
            "need a [spool]",
        ),
        (
            with(
                "url = \"https://siem.example/hook\"",
                "url = \"siem.example\"",
            ),
            16,
            "must start with https://",
        ),
    ];
    for ((line, message), expected_line, expected) in cases {
        assert!(message.contains(expected), "{expected}: {message}");
        assert_eq!(line, Some(expected_line), "{message}");
        assert!(
            !message.contains("hunter2") && !message.contains("s3cret"),
            "{message}"
        );
    }
}
