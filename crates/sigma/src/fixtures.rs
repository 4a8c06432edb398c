//! Fixture events for an imported rule, found by solving its formula: a positive is an
//! assignment of field values that makes the detection true, a near miss the same
//! assignment with one field changed so that it is false. Fields the formula does
//! not mention keep plain defaults. `demarc sigma import` then runs the rule over
//! them, so a fixture the engine disagrees with is reported, never kept.

use std::collections::BTreeMap;

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{Map, Value, json};

use crate::expr::{Atom, Expr, Piece, Test};
use crate::mapping::Source;

/// A field's path in the source record.
type Path = Vec<String>;

/// What a solution says of a field.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Absent,
    Text(String, bool),
}

type Assignment = BTreeMap<Path, Slot>;

/// (file name, JSON) of the positives and of the near misses.
pub type Fixtures = (Vec<(String, String)>, Vec<(String, String)>);

pub fn write(source: Source, id: &str, formula: &Expr) -> Result<Fixtures, String> {
    let positive = solve(formula, true, Assignment::new())
        .ok_or("no assignment of field values satisfies the detection")?;
    if !eval(formula, &positive) {
        return Err("the values found do not satisfy the detection".into());
    }
    let mut positives = vec![positive.clone()];
    let flipped: Assignment = positive
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Slot::Text(t, typed) if !typed => Slot::Text(flip_case(t), false),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    positives.push(if flipped != positive && eval(formula, &flipped) {
        flipped
    } else {
        positive.clone()
    });

    let mut negatives: Vec<(String, Assignment)> = Vec::new();
    for field in positive.keys() {
        let mut partial = positive.clone();
        partial.remove(field);
        if let Some(miss) = solve(formula, false, partial)
            && !eval(formula, &miss)
            && !negatives.iter().any(|(_, n)| *n == miss)
        {
            negatives.push((field.join("."), miss));
        }
        if negatives.len() == 2 {
            break;
        }
    }
    if negatives.is_empty() {
        return Err("no near miss: changing any one field keeps the detection true".into());
    }
    if negatives.len() == 1 {
        let again = negatives[0].clone();
        negatives.push(again);
    }
    let positives = positives
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let name = format!("sigma-positive-{}", i + 1);
            (
                format!("{name}.json"),
                event(source, &format!("{id}-{name}"), a),
            )
        })
        .collect();
    let negatives = negatives
        .iter()
        .enumerate()
        .map(|(i, (field, a))| {
            let name = format!("sigma-near-miss-{}", i + 1);
            let slug: String = field
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            (
                format!("{name}-{slug}.json"),
                event(source, &format!("{id}-{name}"), a),
            )
        })
        .collect();
    Ok((positives, negatives))
}

fn flip_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_lowercase() {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect()
}

/// An assignment extending `given` under which `expr` is `want`.
fn solve(expr: &Expr, want: bool, given: Assignment) -> Option<Assignment> {
    match (expr, want) {
        (Expr::Not(part), _) => solve(part, !want, given),
        (Expr::And(parts), true) | (Expr::Or(parts), false) => {
            parts.iter().try_fold(given, |a, p| solve(p, want, a))
        }
        (Expr::And(parts), false) | (Expr::Or(parts), true) => parts
            .iter()
            .find_map(|p| solve(p, want, given.clone()).filter(|a| eval(expr, a) == want)),
        (Expr::AtLeast(n, parts), true) => {
            let mut a = given;
            let mut count = 0;
            for p in parts {
                if count >= *n {
                    break;
                }
                if let Some(next) = solve(p, true, a.clone()) {
                    a = next;
                    count += 1;
                }
            }
            (count >= *n).then_some(a)
        }
        (Expr::AtLeast(_, parts), false) => parts.iter().try_fold(given, |a, p| solve(p, false, a)),
        (Expr::Atom(atom), _) => solve_atom(atom, want, given),
    }
}

fn solve_atom(atom: &Atom, want: bool, mut a: Assignment) -> Option<Assignment> {
    let path = &atom.target.path;
    if let Some(slot) = a.get(path).cloned() {
        if test(atom, &slot, &a) == want {
            return Some(a);
        }
        // A `contains` or `endswith` test may still hold once its text is appended (a
        // final check of the whole formula catches what that breaks).
        if let (Slot::Text(old, false), Test::Like { pieces, .. }, true) = (&slot, &atom.test, want)
            && let [Piece::Any, Piece::Text(text), ..] = pieces.as_slice()
        {
            let joined = if is_document(path) {
                format!("{old}{PART}{text}")
            } else {
                format!("{old}{text}")
            };
            a.insert(path.clone(), Slot::Text(joined, false));
            return (test(atom, &a[path], &a) == want).then_some(a);
        }
        return None;
    }
    let candidates: Vec<Slot> = if want {
        match &atom.test {
            Test::Like { pieces, typed, .. } => vec![Slot::Text(text_of(pieces), *typed)],
            Test::Regex(pattern) => vec![Slot::Text(from_regex(pattern)?, false)],
            Test::IsNull => vec![Slot::Absent],
            Test::IsNotNull => vec![Slot::Text("present".into(), false)],
            Test::SameAs(other, _) => {
                let value = match a.get(&other.path) {
                    Some(Slot::Text(t, _)) => t.clone(),
                    _ => {
                        a.insert(other.path.clone(), Slot::Text("same-value".into(), false));
                        "same-value".into()
                    }
                };
                vec![Slot::Text(value, false)]
            }
            Test::Compare(op, n) => {
                let v = match *op {
                    ">" => n + 1.0,
                    "<" => n - 1.0,
                    _ => *n,
                };
                vec![Slot::Text(format!("{v}"), true)]
            }
        }
    } else {
        vec![Slot::Text("demarc-near-miss".into(), false), Slot::Absent]
    };
    for slot in candidates {
        if test(atom, &slot, &a) == want {
            a.insert(path.clone(), slot);
            return Some(a);
        }
    }
    None
}

fn text_of(pieces: &[Piece]) -> String {
    let text: String = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Any => "",
            Piece::One => "x",
        })
        .collect();
    // An empty string reads as absent in the normalized columns.
    if text.is_empty() {
        "x".to_owned()
    } else {
        text
    }
}

/// Separates the texts a whole document (`requestParameters|contains|all`) must hold.
const PART: char = '\u{1}';

/// Whether the path is a whole nested document, which fixtures write as an object.
fn is_document(path: &[String]) -> bool {
    match path {
        [one] => matches!(
            one.as_str(),
            "requestParameters" | "responseElements" | "additionalEventData"
        ),
        [payload, document] => {
            payload == "protoPayload" && matches!(document.as_str(), "request" | "response")
        }
        _ => false,
    }
}

/// A whole document holding each part as a value: `"quoted"` parts unquoted, so that
/// the document's JSON text holds them as written.
fn document(text: &str) -> Value {
    let mut map = Map::new();
    for (i, part) in text.split(PART).enumerate() {
        let value = part
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .filter(|p| !p.contains('"') && !p.contains('\\'))
            .unwrap_or(part);
        map.insert(format!("demarc{}", i + 1), Value::String(value.to_owned()));
    }
    Value::Object(map)
}

/// A string the pattern matches: literals, the first character of a class, the
/// first branch, each repetition its minimum (or once).
fn from_regex(pattern: &str) -> Option<String> {
    fn walk(hir: &Hir, out: &mut String) -> Option<()> {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(lit) => out.push_str(std::str::from_utf8(&lit.0).ok()?),
            HirKind::Class(Class::Unicode(class)) => {
                let range = class
                    .ranges()
                    .iter()
                    .find(|r| r.start().is_alphanumeric())
                    .or(class.ranges().first())?;
                out.push(range.start());
            }
            HirKind::Class(Class::Bytes(class)) => {
                out.push(char::from(class.ranges().first()?.start()))
            }
            HirKind::Repetition(rep) => {
                for _ in 0..rep.min.max(1) {
                    walk(&rep.sub, out)?;
                }
            }
            HirKind::Capture(capture) => walk(&capture.sub, out)?,
            HirKind::Concat(parts) => {
                for part in parts {
                    walk(part, out)?;
                }
            }
            HirKind::Alternation(parts) => walk(parts.first()?, out)?,
        }
        Some(())
    }
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut out = String::new();
    walk(&hir, &mut out)?;
    let re = regex::Regex::new(pattern).ok()?;
    re.is_match(&out).then_some(out)
}

fn eval(expr: &Expr, a: &Assignment) -> bool {
    match expr {
        Expr::And(parts) => parts.iter().all(|p| eval(p, a)),
        Expr::Or(parts) => parts.iter().any(|p| eval(p, a)),
        Expr::Not(part) => !eval(part, a),
        Expr::AtLeast(n, parts) => parts.iter().filter(|p| eval(p, a)).count() >= *n,
        Expr::Atom(atom) => test(atom, a.get(&atom.target.path).unwrap_or(&Slot::Absent), a),
    }
}

fn test(atom: &Atom, slot: &Slot, a: &Assignment) -> bool {
    let document_text;
    let value = match slot {
        Slot::Absent => None,
        Slot::Text(t, _) if is_document(&atom.target.path) => {
            document_text = document(t).to_string();
            Some(document_text.as_str())
        }
        Slot::Text(t, _) => Some(t.as_str()),
    };
    match (&atom.test, value) {
        (Test::IsNull, v) => v.is_none(),
        (Test::IsNotNull, v) => v.is_some(),
        (_, None) => false,
        (Test::Like { pieces, cased, .. }, Some(v)) => like(pieces, v, *cased),
        (Test::Regex(p), Some(v)) => regex::Regex::new(p).is_ok_and(|re| re.is_match(v)),
        (Test::SameAs(other, _), Some(v)) => match a.get(&other.path) {
            Some(Slot::Text(o, _)) => o.to_lowercase() == v.to_lowercase(),
            _ => false,
        },
        (Test::Compare(op, n), Some(v)) => v.parse::<f64>().is_ok_and(|x| match *op {
            ">" => x > *n,
            ">=" => x >= *n,
            "<" => x < *n,
            _ => x <= *n,
        }),
    }
}

/// Whether `text` matches the pattern as a whole.
fn like(pieces: &[Piece], text: &str, cased: bool) -> bool {
    let fold = |s: &str| {
        if cased {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let text: Vec<char> = fold(text).chars().collect();
    let pieces: Vec<Piece> = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => Piece::Text(fold(t)),
            other => other.clone(),
        })
        .collect();
    fn go(pieces: &[Piece], text: &[char]) -> bool {
        match pieces.split_first() {
            None => text.is_empty(),
            Some((Piece::Any, rest)) => (0..=text.len()).any(|i| go(rest, &text[i..])),
            Some((Piece::One, rest)) => !text.is_empty() && go(rest, &text[1..]),
            Some((Piece::Text(t), rest)) => {
                let t: Vec<char> = t.chars().collect();
                text.starts_with(&t) && go(rest, &text[t.len()..])
            }
        }
    }
    go(&pieces, &text)
}

/// The event of an assignment: a CloudTrail record or a Cloud Audit Logs entry.
fn event(source: Source, id: &str, a: &Assignment) -> String {
    let mut event = match source {
        Source::CloudTrail => json!({
            "eventVersion": "1.09",
            "eventTime": "2026-01-15T12:00:00Z",
            "eventID": id,
            "eventSource": "sts.amazonaws.com",
            "eventName": "SigmaFixture",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2.15.0",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEFIXTURE",
                "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333",
                "userName": "alice"
            },
            "requestParameters": {},
            "responseElements": null,
            "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333"
        }),
        Source::GcpAudit => json!({
            "insertId": id,
            "timestamp": "2026-01-15T12:00:00Z",
            "logName": "projects/sigma-fixture/logs/cloudaudit.googleapis.com%2Factivity",
            "severity": "NOTICE",
            "resource": {"type": "project", "labels": {"project_id": "sigma-fixture"}},
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "serviceName": "cloudresourcemanager.googleapis.com",
                "methodName": "SigmaFixture",
                "resourceName": "projects/sigma-fixture",
                "authenticationInfo": {"principalEmail": "alice@example.com"},
                "requestMetadata": {"callerIp": "203.0.113.10"}
            }
        }),
    };
    for (path, slot) in a {
        place(&mut event, path, slot);
    }
    serde_json::to_string_pretty(&event).unwrap_or_default() + "\n"
}

fn place(event: &mut Value, path: &[String], slot: &Slot) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = event;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("an object");
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let map = node.as_object_mut().expect("an object");
    match slot {
        Slot::Absent => {
            map.remove(last);
        }
        Slot::Text(text, _) if is_document(path) => {
            map.insert(last.clone(), document(text));
        }
        Slot::Text(text, typed) => {
            let value = if *typed {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
            } else {
                Value::String(text.clone())
            };
            map.insert(last.clone(), value);
        }
    }
}
