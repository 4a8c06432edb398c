use super::parse::expiry;
use super::*;
use arrow::array::Array;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write table");
    }
    dir
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

/// The live rows of a table, as its first column's values.
fn live(lists: &AllowLists, name: &str) -> Vec<String> {
    let table = lists
        .tables
        .iter()
        .find(|t| t.name == name)
        .expect("table exists");
    let batches = table.provider.batches[0]
        .try_read()
        .expect("no writer")
        .clone();
    batches
        .iter()
        .flat_map(|b| {
            let column = b
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("text");
            (0..column.len())
                .map(|i| column.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_builtin_tables_are_empty_and_carry_their_columns() {
    let lists = AllowLists::builtin().expect("built-in tables load");
    assert_eq!(
        lists.names(),
        ["public_buckets", "trusted_accounts", "trusted_domains"]
    );
    assert!(live(&lists, "trusted_domains").is_empty());
    let columns = lists.tables[2].column_names();
    assert_eq!(columns, ["domain", "owner", "reason", "expires"]);
}

#[test]
fn csv_and_toml_rows_load_and_expired_rows_are_left_out() {
    let dir = dir_with(&[
        (
            "trusted_domains.csv",
            "domain,owner,reason,expires\n\
             # a comment line\n\
             example.org,secops@example.com,\"subsidiary, same IdP\",2027-06-30\n\
             old.example,secops@example.com,sold in 2025,2025-12-31\n",
        ),
        (
            "automation_roles.toml",
            "[[rows]]\narn = \"arn:aws:iam::111122223333:role/deployer\"\nowner = \"platform\"\n\
             reason = \"terraform\"\nexpires = 2027-01-01\n\n[[rows]]\n\
             arn = \"arn:aws:iam::111122223333:role/old\"\nowner = \"platform\"\n\
             reason = \"gone\"\nexpires = 2026-01-01T00:00:00Z\n",
        ),
    ]);
    let lists = AllowLists::load_at(Some(dir.path()), at("2026-06-01T00:00:00Z")).expect("loads");
    assert_eq!(
        lists.names(),
        [
            "automation_roles",
            "public_buckets",
            "trusted_accounts",
            "trusted_domains"
        ]
    );
    assert_eq!(live(&lists, "trusted_domains"), ["example.org"]);
    assert_eq!(
        live(&lists, "automation_roles"),
        ["arn:aws:iam::111122223333:role/deployer"]
    );
    let roles = &lists.tables[0];
    assert_eq!(roles.column_names(), ["arn", "owner", "reason", "expires"]);
}

#[test]
fn a_date_holds_through_its_day_in_utc() {
    let end = expiry("2027-06-30").expect("a date");
    assert_eq!(end, at("2027-07-01T00:00:00Z"));
    assert_eq!(
        expiry("2027-06-30T18:00:00+02:00"),
        Some(at("2027-06-30T16:00:00Z"))
    );
    for bad in ["never", "2027-13-01", "30/06/2027", "2027-06-30 18:00"] {
        assert_eq!(expiry(bad), None, "{bad}");
    }
}

#[test]
fn every_problem_is_reported_with_its_file_and_line() {
    let dir = dir_with(&[
        (
            "trusted_domains.csv",
            "domain,owner,reason,expires\n\
             a.example,me,ok,2027-01-01\n\
             b.example,,no owner,2027-01-01\n\
             c.example,me,bad date,someday\n\
             d.example,me,too,many,2027-01-01\n",
        ),
        ("Bad-Name.csv", "x,owner,reason,expires\n"),
        ("public_buckets.csv", "name,owner,reason,expires\n"),
        ("no_bookkeeping.csv", "domain\nexample.org\n"),
        ("twice.csv", "x,owner,reason,expires\n"),
        ("twice.toml", ""),
        (
            "broken.toml",
            "[[rows]]\nx = \"a\"\nowner = [1]\nreason = \"r\"\nexpires = 2027-01-01\n",
        ),
        ("notes.md", "ignored"),
    ]);
    let problems = AllowLists::load(Some(dir.path())).expect_err("problems");
    let text: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}:{}: {}",
                p.file.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                p.line,
                p.message
            )
        })
        .collect();
    let has = |prefix: &str, words: &str| {
        assert!(
            text.iter()
                .any(|t| t.starts_with(prefix) && t.contains(words)),
            "no `{prefix}` … `{words}` in {text:#?}"
        );
    };
    has("trusted_domains.csv:3:", "`owner` is empty");
    has("trusted_domains.csv:4:", "`expires` is `someday`");
    has("trusted_domains.csv:5:", "quote values that hold a comma");
    has("Bad-Name.csv:1:", "cannot be a table name");
    has("public_buckets.csv:1:", "the rules read `bucket`");
    has(
        "no_bookkeeping.csv:1:",
        "missing column(s) owner, reason, expires",
    );
    has("twice.toml:1:", "also given by");
    has(
        "broken.toml:3:",
        "`owner` must be text, a number or a date, not array",
    );
    assert_eq!(text.len(), 8, "{text:#?}");
}

#[test]
fn a_changed_file_applies_on_refresh_and_a_broken_one_keeps_the_old_rows() {
    let dir = dir_with(&[(
        "trusted_domains.csv",
        "domain,owner,reason,expires\na.example,me,ok,2027-01-01\n",
    )]);
    let file = dir.path().join("trusted_domains.csv");
    let now = at("2026-06-01T00:00:00Z");
    let lists = AllowLists::load_at(Some(dir.path()), now).expect("loads");
    let unchanged = lists.refresh_at(now);
    assert!(unchanged.reloaded.is_empty() && unchanged.failed.is_empty());

    std::fs::write(
        &file,
        "domain,owner,reason,expires\na.example,me,ok,2027-01-01\nb.example,me,new,2027-01-01\n",
    )
    .expect("rewrite");
    let changed = lists.refresh_at(now);
    assert_eq!(changed.reloaded, std::slice::from_ref(&file));
    assert_eq!(live(&lists, "trusted_domains"), ["a.example", "b.example"]);

    std::fs::write(
        &file,
        "domain,owner,reason,expires\nc.example,,x,2027-01-01\n",
    )
    .expect("rewrite");
    let broken = lists.refresh_at(now);
    assert_eq!(broken.failed.len(), 1, "{broken:?}");
    assert!(broken.failed[0].message.contains("`owner` is empty"));
    assert_eq!(live(&lists, "trusted_domains"), ["a.example", "b.example"]);
    // Reported once, not on every look.
    assert!(lists.refresh_at(now).failed.is_empty());

    std::fs::write(
        &file,
        "host,owner,reason,expires\nc.example,me,x,2027-01-01\n",
    )
    .expect("rewrite");
    let renamed = lists.refresh_at(now);
    assert!(
        renamed.failed[0]
            .message
            .contains("missing column(s) domain"),
        "{renamed:?}"
    );
    std::fs::write(
        &file,
        "domain,note,owner,reason,expires\nc.example,n,me,x,2027-01-01\n",
    )
    .expect("rewrite");
    let widened = lists.refresh_at(now);
    assert!(
        widened.failed[0].message.contains("restart to change"),
        "{widened:?}"
    );
    assert_eq!(live(&lists, "trusted_domains"), ["a.example", "b.example"]);
}

#[test]
fn a_row_that_expires_while_running_stops_holding_and_is_reported_once() {
    let dir = dir_with(&[(
        "trusted_domains.csv",
        "domain,owner,reason,expires\n\
         a.example,alice,ok,2026-06-01T12:00:00Z\n\
         b.example,bob,ok,2027-01-01\n",
    )]);
    let lists = AllowLists::load_at(Some(dir.path()), at("2026-06-01T11:00:00Z")).expect("loads");
    assert_eq!(live(&lists, "trusted_domains"), ["a.example", "b.example"]);
    assert!(
        lists
            .refresh_at(at("2026-06-01T11:59:59Z"))
            .expired
            .is_empty()
    );
    let later = lists.refresh_at(at("2026-06-01T12:00:00Z"));
    assert_eq!(later.expired.len(), 1);
    let expired = &later.expired[0];
    assert_eq!((expired.line, expired.owner.as_str()), (2, "alice"));
    assert!(
        expired
            .to_string()
            .contains("allow.trusted_domains row (domain=a.example) expired 2026-06-01T12:00:00Z"),
        "{expired}"
    );
    assert_eq!(live(&lists, "trusted_domains"), ["b.example"]);
    assert!(
        lists
            .refresh_at(at("2026-06-02T00:00:00Z"))
            .expired
            .is_empty()
    );
}

#[tokio::test]
async fn rules_read_the_tables_as_allow_dot_name() {
    let dir = dir_with(&[(
        "trusted_domains.csv",
        "domain,owner,reason,expires\na.example,me,ok,2999-01-01\n",
    )]);
    let lists = AllowLists::load(Some(dir.path())).expect("loads");
    let ctx = SessionContext::new();
    lists.register(&ctx).expect("register");
    let batches = ctx
        .sql("SELECT domain, owner FROM allow.trusted_domains")
        .await
        .expect("plans")
        .collect()
        .await
        .expect("runs");
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("prints")
        .to_string();
    assert!(text.contains("| a.example | me    |"), "{text}");
}
