//! The coverage report as text for a terminal, and as one self-contained HTML page.

use std::fmt::Write as _;

use demarc_model::{ServiceModel, SrmLayer};

use super::{Cell, ClassCoverage, FixtureCount, PROVIDERS, Report};
use crate::rule::Evasion;

/// Short column heads for the evasion classes, in [`Evasion::ALL`] order.
const CLASS_HEADS: [&str; 8] = ["AD", "WP", "PS", "NC", "LR", "OC", "SD", "CV"];

/// A class cell: `p/n` fixture files, `!` declared without any, `(p/n)` exercised but
/// not declared, blank when neither; `?` declared while fixtures are unknown.
fn class_cell(class: Option<&ClassCoverage>) -> String {
    let Some(class) = class else {
        return String::new();
    };
    match (class.declared, class.fixtures) {
        (true, None) => "?".into(),
        (true, Some(f)) if f.positive + f.negative == 0 => "!".into(),
        (true, Some(f)) => format!("{}/{}", f.positive, f.negative),
        (false, Some(f)) => format!("({}/{})", f.positive, f.negative),
        (false, None) => String::new(),
    }
}

fn cell_of<'r>(
    report: &'r Report,
    provider: &str,
    layer: SrmLayer,
    model: ServiceModel,
) -> Option<&'r Cell> {
    report
        .grid
        .iter()
        .find(|c| c.provider == provider && c.srm_layer == layer && c.service_model == model)
}

fn fixtures_text(f: Option<FixtureCount>) -> String {
    f.map_or_else(|| "?".into(), |f| format!("{}/{}", f.positive, f.negative))
}

/// Columns padded to their widest cell, two spaces apart.
fn aligned(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The report for a terminal.
pub fn table(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} rules ({}) watch {} of {} catalog controls; {} without a rule. Fixtures: {}.",
        s.rules,
        report.rules_from,
        s.watched,
        s.controls,
        s.unwatched.len(),
        report.fixtures_from
    );
    out.push_str("\nControls watched, by provider, SRM layer and service model (watched/known):\n");
    let mut rows = vec![
        ["PROVIDER", "LAYER"]
            .into_iter()
            .map(str::to_owned)
            .chain(ServiceModel::ALL.iter().map(ToString::to_string))
            .collect::<Vec<_>>(),
    ];
    for provider in PROVIDERS {
        let mut first = true;
        for layer in SrmLayer::ALL {
            let cells: Vec<String> = ServiceModel::ALL
                .iter()
                .map(|m| {
                    cell_of(report, provider, *layer, *m).map_or_else(
                        || "-".into(),
                        |c| format!("{}/{}", c.watched.len(), c.controls.len()),
                    )
                })
                .collect();
            if cells.iter().all(|c| c == "-") {
                continue;
            }
            let name = if first { provider } else { "" };
            first = false;
            rows.push(
                [name.to_owned(), layer.to_string()]
                    .into_iter()
                    .chain(cells)
                    .collect(),
            );
        }
    }
    aligned(&mut out, "  ", &rows);

    let _ = writeln!(out, "\nControls without a rule ({}):", s.unwatched.len());
    let gaps: Vec<Vec<String>> = report
        .controls
        .iter()
        .filter(|c| c.rules.is_empty())
        .map(|c| {
            let c = &c.control;
            vec![
                c.id.clone(),
                c.srm_layer.to_string(),
                format!("{} ({}: {})", c.control, c.service, c.operations.join(", ")),
            ]
        })
        .collect();
    if gaps.is_empty() {
        out.push_str("  none\n");
    }
    aligned(&mut out, "  ", &gaps);

    out.push_str("\nControls and the rules that watch them:\n");
    let mut rows = vec![vec![
        "CONTROL".into(),
        "LAYER".into(),
        "CATEGORY".into(),
        "RULES".into(),
    ]];
    rows.extend(report.controls.iter().map(|c| {
        vec![
            c.control.id.clone(),
            c.control.srm_layer.to_string(),
            c.control.category.to_string(),
            if c.rules.is_empty() {
                "-".into()
            } else {
                c.rules.join(", ")
            },
        ]
    }));
    aligned(&mut out, "  ", &rows);

    out.push_str(
        "\nEvasion classes per rule (fixture files positive/negative; ! declared without a \
         fixture):\n",
    );
    let legend: Vec<String> = Evasion::ALL
        .iter()
        .zip(CLASS_HEADS)
        .map(|(e, h)| format!("{h} {e}"))
        .collect();
    let _ = writeln!(out, "  {}", legend.join(", "));
    let mut rows = vec![
        ["RULE", "FIXTURES"]
            .into_iter()
            .chain(CLASS_HEADS)
            .chain(["ALLOW"])
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    ];
    for rule in &report.rules {
        let mut row = vec![rule.id.clone(), fixtures_text(rule.fixtures)];
        for class in Evasion::ALL {
            row.push(class_cell(
                rule.evasions.iter().find(|c| c.class == class.as_str()),
            ));
        }
        row.push(if rule.allow_tables.is_empty() {
            String::new()
        } else {
            format!(
                "{} ({} rows in force)",
                rule.allow_tables.join(", "),
                rule.muted_by
            )
        });
        rows.push(row);
    }
    aligned(&mut out, "  ", &rows);
    if !s.classes_without_fixture.is_empty() {
        let _ = writeln!(
            out,
            "  declared without a fixture: {}",
            s.classes_without_fixture.join(", ")
        );
    }

    let _ = writeln!(
        out,
        "\nAllow-table rows ({} in force and muting a rule, {} expired):",
        s.muting_rows, s.expired_rows
    );
    if report.allow.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![
            [
                "TABLE", "VALUES", "OWNER", "EXPIRES", "STATE", "MUTES", "WHERE",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for a in &report.allow {
            let e = &a.entry;
            rows.push(vec![
                e.table.clone(),
                values_text(&e.values),
                e.owner.clone(),
                e.expires.clone(),
                if e.expired { "expired" } else { "in force" }.into(),
                if a.rules.is_empty() {
                    "-".into()
                } else {
                    a.rules.join(", ")
                },
                format!("{}:{}", e.file.display(), e.line),
            ]);
        }
        aligned(&mut out, "  ", &rows);
    }
    out
}

fn values_text(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text made safe inside HTML elements and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1d1d1f}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;\
text-align:left;vertical-align:top}th{background:#f2f2f2}\
td.full{background:#d8f5d8}td.part{background:#fff1c2}td.none{background:#fbd3d3}\
td.missing{background:#fbd3d3;font-weight:bold}td.num{text-align:center}\
tr.gap td:first-child{font-weight:bold}.muted{color:#777}input{margin:.5em 0;padding:.3em;width:24em}";

/// Filters the controls table as the reader types; marks the page ready when done.
const SCRIPT: &str = "(function(){var box=document.getElementById('filter');\
var rows=document.querySelectorAll('#controls tbody tr');\
box.addEventListener('input',function(){var q=box.value.toLowerCase();\
rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});\
document.body.setAttribute('data-rendered-rows',String(Array.prototype.filter.call(\
document.querySelectorAll('table tbody tr'),function(r){return r.getBoundingClientRect().height>0;}).length));\
})();";

/// The report as one HTML page with no outside resources.
pub fn html(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>demarc coverage</title><style>{STYLE}</style></head><body>\n\
         <h1>Shared-Responsibility coverage</h1>\n<p id=\"summary\">{} rules ({}) watch \
         <strong>{} of {}</strong> catalog controls; {} without a rule. Fixtures: {}.</p>\n",
        s.rules,
        esc(&report.rules_from),
        s.watched,
        s.controls,
        s.unwatched.len(),
        esc(&report.fixtures_from)
    );

    out.push_str("<h2>Controls watched, by SRM layer and service model</h2>\n");
    for provider in PROVIDERS {
        let _ = write!(
            out,
            "<table class=\"grid\" id=\"grid-{provider}\"><thead><tr><th>{provider}</th>"
        );
        for model in ServiceModel::ALL {
            let _ = write!(out, "<th>{model}</th>");
        }
        out.push_str("</tr></thead><tbody>\n");
        for layer in SrmLayer::ALL {
            let cells: Vec<Option<&Cell>> = ServiceModel::ALL
                .iter()
                .map(|m| cell_of(report, provider, *layer, *m))
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let _ = write!(out, "<tr><th>{layer}</th>");
            for cell in cells {
                match cell {
                    None => out.push_str("<td class=\"num muted\">-</td>"),
                    Some(c) => {
                        let class = if c.watched.len() == c.controls.len() {
                            "full"
                        } else if c.watched.is_empty() {
                            "none"
                        } else {
                            "part"
                        };
                        let _ = write!(
                            out,
                            "<td class=\"num {class}\" title=\"{}\">{}/{}</td>",
                            esc(&c.controls.join(", ")),
                            c.watched.len(),
                            c.controls.len()
                        );
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }

    out.push_str(
        "<h2>Catalog controls</h2>\n<input id=\"filter\" type=\"search\" \
         placeholder=\"Filter controls\" aria-label=\"Filter controls\">\n\
         <table id=\"controls\"><thead><tr><th>control</th><th>provider</th><th>what the \
         customer keeps</th><th>layer</th><th>category</th><th>service models</th>\
         <th>operations</th><th>rules</th></tr></thead><tbody>\n",
    );
    for c in &report.controls {
        let k = &c.control;
        let models: Vec<String> = k.service_models.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}: {}</td><td{}>{}</td></tr>",
            if c.rules.is_empty() {
                " class=\"gap\""
            } else {
                ""
            },
            esc(&k.id),
            esc(&k.provider),
            esc(&k.control),
            k.srm_layer,
            k.category,
            models.join(", "),
            esc(&k.service),
            esc(&k.operations.join(", ")),
            if c.rules.is_empty() {
                " class=\"missing\""
            } else {
                ""
            },
            if c.rules.is_empty() {
                "no rule".to_owned()
            } else {
                esc(&c.rules.join(", "))
            }
        );
    }
    out.push_str("</tbody></table>\n");

    out.push_str(
        "<h2>Evasion classes exercised by each rule's fixtures</h2>\n<p class=\"muted\">Fixture \
         files positive/negative; <strong>!</strong> declared without a fixture; (p/n) \
         exercised but not declared.</p>\n<table id=\"evasions\"><thead><tr><th>rule</th>\
         <th>title</th><th>fixtures</th>",
    );
    for class in Evasion::ALL {
        let _ = write!(out, "<th>{class}</th>");
    }
    out.push_str("<th>allow tables</th></tr></thead><tbody>\n");
    for rule in &report.rules {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
            esc(&rule.id),
            esc(&rule.title),
            fixtures_text(rule.fixtures)
        );
        for class in Evasion::ALL {
            let text = class_cell(rule.evasions.iter().find(|c| c.class == class.as_str()));
            let css = if text == "!" { "num missing" } else { "num" };
            let _ = write!(out, "<td class=\"{css}\">{}</td>", esc(&text));
        }
        let _ = writeln!(
            out,
            "<td>{}</td></tr>",
            if rule.allow_tables.is_empty() {
                String::new()
            } else {
                esc(&format!(
                    "{} ({} rows in force)",
                    rule.allow_tables.join(", "),
                    rule.muted_by
                ))
            }
        );
    }
    out.push_str("</tbody></table>\n");

    let _ = write!(
        out,
        "<h2>Allow-table rows</h2>\n<p>{} in force and muting a rule, {} expired.</p>\n\
         <table id=\"allow\"><thead><tr><th>table</th><th>values</th><th>owner</th>\
         <th>reason</th><th>expires</th><th>state</th><th>mutes</th><th>where</th></tr>\
         </thead><tbody>\n",
        s.muting_rows, s.expired_rows
    );
    for a in &report.allow {
        let e = &a.entry;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}:{}</td></tr>",
            esc(&e.table),
            esc(&values_text(&e.values)),
            esc(&e.owner),
            esc(&e.reason),
            esc(&e.expires),
            if e.expired { "expired" } else { "in force" },
            esc(&a.rules.join(", ")),
            esc(&e.file.display().to_string()),
            e.line
        );
    }
    let _ = write!(
        out,
        "</tbody></table>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    out
}
