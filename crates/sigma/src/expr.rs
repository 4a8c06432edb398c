//! A Sigma rule's detection as one boolean formula over field tests ([`Atom`]), from
//! which both the SQL and the fixture events are written.

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SelectorPattern, SigmaString,
    SigmaValue, SpecialChar, StringPart, detection_name_matches,
};

use crate::mapping::{Source, Target, map_field};

/// The field fixture events hold a keyword in (any field would do: keywords are
/// searched in the whole event).
pub const KEYWORD_FIELD: &str = "demarcKeyword";

/// A boolean formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// At least `n` of the parts (`2 of selection_*`).
    AtLeast(usize, Vec<Expr>),
    Atom(Atom),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// The Sigma field name (`None` for a keyword, matched in the whole event).
    pub field: Option<String>,
    pub target: Target,
    pub test: Test,
}

/// A piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `*`
    Any,
    /// `?`
    One,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The field's text matches the pattern, whole (`contains` and friends add `Any`).
    /// `typed`: the value was a number or boolean in the YAML.
    Like {
        pieces: Vec<Piece>,
        cased: bool,
        typed: bool,
    },
    /// A regular expression (`re`), with its flags folded in.
    Regex(String),
    IsNull,
    IsNotNull,
    /// Equal to another field (`fieldref`).
    SameAs(Box<Target>, String),
    /// A numeric comparison (`gt`, `gte`, `lt`, `lte`).
    Compare(&'static str, f64),
}

/// Builds the formula of a rule's detections and conditions.
pub fn build(
    source: Source,
    named: &HashMap<String, Detection>,
    conditions: &[ConditionExpr],
) -> Result<Expr, String> {
    let mut names: Vec<&String> = named.keys().collect();
    names.sort();
    let mut parts = Vec::new();
    for condition in conditions {
        parts.push(condition_expr(source, named, &names, condition)?);
    }
    Ok(match parts.len() {
        1 => parts.pop().expect("one"),
        _ => Expr::Or(parts),
    })
}

fn condition_expr(
    source: Source,
    named: &HashMap<String, Detection>,
    names: &[&String],
    condition: &ConditionExpr,
) -> Result<Expr, String> {
    let recurse = |c: &ConditionExpr| condition_expr(source, named, names, c);
    Ok(match condition {
        ConditionExpr::And(parts) => {
            Expr::And(parts.iter().map(recurse).collect::<Result<_, _>>()?)
        }
        ConditionExpr::Or(parts) => Expr::Or(parts.iter().map(recurse).collect::<Result<_, _>>()?),
        ConditionExpr::Not(part) => Expr::Not(Box::new(recurse(part)?)),
        ConditionExpr::Identifier(name) => {
            let detection = named
                .get(name)
                .ok_or_else(|| format!("the condition names `{name}`, which is not a detection"))?;
            detection_expr(source, detection)?
        }
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let chosen: Vec<&String> = names
                .iter()
                .copied()
                .filter(|n| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => detection_name_matches(p, n),
                })
                .collect();
            if chosen.is_empty() {
                return Err(format!("`{quantifier} of {pattern}` selects no detection"));
            }
            let parts = chosen
                .iter()
                .map(|n| detection_expr(source, &named[*n]))
                .collect::<Result<Vec<_>, _>>()?;
            match quantifier {
                Quantifier::Any => Expr::Or(parts),
                Quantifier::All => Expr::And(parts),
                Quantifier::Count(n) => {
                    Expr::AtLeast(usize::try_from(*n).unwrap_or(usize::MAX), parts)
                }
            }
        }
    })
}

fn detection_expr(source: Source, detection: &Detection) -> Result<Expr, String> {
    match detection {
        Detection::AllOf(items) => Ok(Expr::And(
            items
                .iter()
                .map(|i| item_expr(source, i))
                .collect::<Result<_, _>>()?,
        )),
        Detection::AnyOf(parts) => Ok(Expr::Or(
            parts
                .iter()
                .map(|d| detection_expr(source, d))
                .collect::<Result<_, _>>()?,
        )),
        Detection::And(parts) => Ok(Expr::And(
            parts
                .iter()
                .map(|d| detection_expr(source, d))
                .collect::<Result<_, _>>()?,
        )),
        Detection::Keywords(values) => Ok(Expr::Or(
            values.iter().map(keyword).collect::<Result<_, _>>()?,
        )),
        Detection::ArrayMatch { field, .. } => Err(format!(
            "`{field}[…]` array blocks are not supported: demarc matches one value per field"
        )),
        Detection::Conditional { .. } => {
            Err("element-scoped conditions are not supported".to_owned())
        }
    }
}

/// A keyword: the whole event (the `raw` column) contains it.
fn keyword(value: &SigmaValue) -> Result<Expr, String> {
    let text = match value {
        SigmaValue::String(s) => s.original.clone(),
        SigmaValue::Integer(i) => i.to_string(),
        SigmaValue::Float(f) => f.to_string(),
        SigmaValue::Bool(b) => b.to_string(),
        SigmaValue::Null => return Err("a null keyword matches nothing".to_owned()),
    };
    Ok(Expr::Atom(Atom {
        field: None,
        target: Target {
            sql: "raw".to_owned(),
            // Fixture events carry a keyword in a field of their own.
            path: vec![KEYWORD_FIELD.to_owned()],
            raw: true,
        },
        test: Test::Like {
            pieces: vec![Piece::Any, Piece::Text(text), Piece::Any],
            cased: false,
            typed: false,
        },
    }))
}

fn item_expr(source: Source, item: &DetectionItem) -> Result<Expr, String> {
    let Some(name) = &item.field.name else {
        return Ok(Expr::Or(
            item.values.iter().map(keyword).collect::<Result<_, _>>()?,
        ));
    };
    let target = map_field(source, name)?;
    let modifiers = &item.field.modifiers;
    let has = |m: Modifier| modifiers.contains(&m);
    for m in modifiers {
        let supported = matches!(
            m,
            Modifier::Contains
                | Modifier::StartsWith
                | Modifier::EndsWith
                | Modifier::All
                | Modifier::Re
                | Modifier::Cased
                | Modifier::Exists
                | Modifier::FieldRef
                | Modifier::Gt
                | Modifier::Gte
                | Modifier::Lt
                | Modifier::Lte
                | Modifier::IgnoreCase
                | Modifier::Multiline
                | Modifier::DotAll
        );
        if !supported {
            return Err(format!(
                "field `{name}`: the modifier `{}` is not supported",
                format!("{m:?}").to_lowercase()
            ));
        }
    }
    let mut tests = Vec::new();
    for value in &item.values {
        let test = value_test(name, &target, value, modifiers, source)?;
        tests.push(Expr::Atom(Atom {
            field: Some(name.clone()),
            target: target.clone(),
            test,
        }));
    }
    if tests.is_empty() {
        return Err(format!("field `{name}` has no value"));
    }
    Ok(if has(Modifier::All) {
        Expr::And(tests)
    } else if tests.len() == 1 {
        tests.pop().expect("one")
    } else {
        Expr::Or(tests)
    })
}

fn value_test(
    name: &str,
    target: &Target,
    value: &SigmaValue,
    modifiers: &[Modifier],
    source: Source,
) -> Result<Test, String> {
    let has = |m: Modifier| modifiers.contains(&m);
    if has(Modifier::Exists) {
        return match value {
            SigmaValue::Bool(true) => Ok(Test::IsNotNull),
            SigmaValue::Bool(false) => Ok(Test::IsNull),
            _ => Err(format!("field `{name}`: `exists` takes true or false")),
        };
    }
    if has(Modifier::FieldRef) {
        let SigmaValue::String(other) = value else {
            return Err(format!("field `{name}`: `fieldref` takes a field name"));
        };
        let other_name = other.original.clone();
        let other = map_field(source, &other_name)?;
        return Ok(Test::SameAs(Box::new(other), other_name));
    }
    for (modifier, op) in [
        (Modifier::Gt, ">"),
        (Modifier::Gte, ">="),
        (Modifier::Lt, "<"),
        (Modifier::Lte, "<="),
    ] {
        if has(modifier) {
            let number = match value {
                SigmaValue::Integer(i) => *i as f64,
                SigmaValue::Float(f) => *f,
                _ => return Err(format!("field `{name}`: `{op}` takes a number")),
            };
            return Ok(Test::Compare(op, number));
        }
    }
    if has(Modifier::Re) {
        let SigmaValue::String(pattern) = value else {
            return Err(format!("field `{name}`: `re` takes a pattern"));
        };
        let mut flags = String::new();
        for (m, f) in [
            (Modifier::IgnoreCase, 'i'),
            (Modifier::Multiline, 'm'),
            (Modifier::DotAll, 's'),
        ] {
            if has(m) {
                flags.push(f);
            }
        }
        let pattern = if flags.is_empty() {
            pattern.original.clone()
        } else {
            format!("(?{flags}){}", pattern.original)
        };
        // The engine behind DataFusion's `regexp_like`: what it cannot run fails here.
        regex::Regex::new(&pattern).map_err(|e| {
            format!(
                "field `{name}`: the `re` pattern cannot run in demarc's regex engine (no \
                 look-around or back-references): {}",
                e.to_string().lines().last().unwrap_or("invalid pattern")
            )
        })?;
        return Ok(Test::Regex(pattern));
    }
    let _ = target;
    let typed = !matches!(value, SigmaValue::String(_));
    let mut pieces = match value {
        SigmaValue::Null => return Ok(Test::IsNull),
        SigmaValue::String(s) => pieces_of(s),
        SigmaValue::Integer(i) => vec![Piece::Text(i.to_string())],
        SigmaValue::Float(f) => vec![Piece::Text(f.to_string())],
        SigmaValue::Bool(b) => vec![Piece::Text(b.to_string())],
    };
    if has(Modifier::Contains) || has(Modifier::EndsWith) {
        pieces.insert(0, Piece::Any);
    }
    if has(Modifier::Contains) || has(Modifier::StartsWith) {
        pieces.push(Piece::Any);
    }
    Ok(Test::Like {
        pieces,
        cased: has(Modifier::Cased),
        typed,
    })
}

fn pieces_of(s: &SigmaString) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for part in &s.parts {
        match part {
            StringPart::Plain(text) => match pieces.last_mut() {
                Some(Piece::Text(last)) => last.push_str(text),
                _ => pieces.push(Piece::Text(text.clone())),
            },
            StringPart::Special(SpecialChar::WildcardMulti) => pieces.push(Piece::Any),
            StringPart::Special(SpecialChar::WildcardSingle) => pieces.push(Piece::One),
        }
    }
    pieces
}
