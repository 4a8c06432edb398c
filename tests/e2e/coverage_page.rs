//! `demarc coverage --format html` as a security lead opens it: loaded in a real
//! browser (headless Chromium), the page must lay out every table the JSON report
//! describes, with each control, rule and allow row in it.

use std::path::PathBuf;
use std::process::Command;

use demarc_tests::demarc::binary;

/// Chromium: `$DEMARC_CHROMIUM`, or `chromium` on the PATH (`.ci/run` installs it).
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("DEMARC_CHROMIUM") {
        return path.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
            .find(|p| p.is_file())
    });
    found.expect(
        "Chromium is needed to check that the coverage page renders: install the `chromium` \
         package (`.ci/run` does) or set DEMARC_CHROMIUM",
    )
}

fn coverage(args: &[&str]) -> String {
    let out = Command::new(binary().expect("the demarc binary"))
        .arg("coverage")
        .args(args)
        .output()
        .expect("run demarc coverage");
    assert!(
        out.status.success(),
        "demarc coverage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The text of every `<td>` of the table with `id` in `dom`, row by row.
fn rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table `{id}` in the page"));
    let table = &dom[start..start + dom[start..].find("</table>").expect("table ends")];
    let body = &table[table.find("<tbody>").expect("a body")..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = &cell[cell.find('>').expect("tag ends") + 1..];
                    text[..text.find("</td>").expect("cell ends")].to_owned()
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_html_report_renders_every_table_in_a_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let allow = dir.path().join("allow");
    std::fs::create_dir(&allow).expect("mkdir");
    std::fs::write(
        allow.join("public_buckets.csv"),
        "bucket,owner,reason,expires\n\
         www.example.com,web team,the public <website>,2999-12-31\n\
         old-site,web team,retired,2001-01-01\n",
    )
    .expect("write allow table");
    let allow = allow.to_str().expect("UTF-8 path");
    let json: serde_json::Value =
        serde_json::from_str(&coverage(&["--allow", allow, "--format", "json"])).expect("JSON");
    let page = dir.path().join("coverage.html");
    coverage(&[
        "--allow",
        allow,
        "--format",
        "html",
        "--out",
        page.to_str().expect("UTF-8 path"),
    ]);

    let profile = tempfile::tempdir().expect("browser profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run Chromium");
    assert!(
        out.status.success(),
        "Chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).expect("UTF-8 DOM");

    let controls = json["controls"].as_array().expect("controls");
    let rules = json["rules"].as_array().expect("rules");
    let allow_rows = json["allow"].as_array().expect("allow rows");
    let unwatched = json["summary"]["unwatched"]
        .as_array()
        .expect("unwatched")
        .len();
    assert!(
        controls.len() > 40 && rules.len() > 30 && unwatched > 0,
        "{json:#}"
    );
    assert_eq!(allow_rows.len(), 2);

    // The page's script ran after layout and counted the body rows the browser drew
    // with a height: every row of every table.
    let layers = |provider: &str| {
        let mut seen: Vec<&str> = json["grid"]
            .as_array()
            .expect("grid")
            .iter()
            .filter(|c| c["provider"] == provider)
            .filter_map(|c| c["srm_layer"].as_str())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    let expected = layers("aws") + layers("gcp") + controls.len() + rules.len() + allow_rows.len();
    let drawn = dom
        .split("data-rendered-rows=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's script marks the body with the rows it drew");
    assert_eq!(drawn, expected.to_string());

    // Each control in its row, with its rules or `no rule`.
    let table = rows(&dom, "controls");
    assert_eq!(table.len(), controls.len());
    for (row, control) in table.iter().zip(controls) {
        assert_eq!(row[0], control["id"].as_str().expect("id"));
        let watched_by: Vec<&str> = control["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter_map(|r| r.as_str())
            .collect();
        let expected = if watched_by.is_empty() {
            "no rule".to_owned()
        } else {
            watched_by.join(", ")
        };
        assert_eq!(row[7], expected, "{row:?}");
    }
    assert_eq!(
        table.iter().filter(|r| r[7] == "no rule").count(),
        unwatched
    );

    // Each rule, with the evasion classes its header declares showing fixture counts.
    let table = rows(&dom, "evasions");
    assert_eq!(table.len(), rules.len());
    let policy = table
        .iter()
        .find(|r| r[0] == "aws-s3-bucket-policy-public")
        .expect("the bucket-policy rule");
    assert!(
        policy[5].contains('/'),
        "policy-semantics fixtures: {policy:?}"
    );
    assert_eq!(policy[11], "public_buckets (1 rows in force)");

    // The allow rows, escaped, with the rules they mute.
    let table = rows(&dom, "allow");
    assert_eq!(table[0][3], "the public &lt;website&gt;");
    assert_eq!(table[0][5], "in force");
    assert_eq!(table[1][5], "expired");
    assert!(
        table[0][6].contains("aws-s3-bucket-policy-public"),
        "{:?}",
        table[0]
    );
}
