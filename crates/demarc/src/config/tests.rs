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
