//! The formula as a SQL condition over `events`. Strings compare without regard to
//! case unless `cased` (as Sigma specifies); a `not` over a field that is absent is
//! true, as in Sigma, so every negation reads NULL as false first.

use crate::expr::{Atom, Expr, Piece, Test};
use crate::mapping::literal;

pub fn condition(expr: &Expr) -> String {
    match expr {
        Expr::And(parts) => join(parts, " AND "),
        Expr::Or(parts) => join(parts, " OR "),
        Expr::Not(part) => format!("NOT coalesce({}, false)", condition(part)),
        Expr::AtLeast(n, parts) => {
            let counts: Vec<String> = parts
                .iter()
                .map(|p| format!("CASE WHEN {} THEN 1 ELSE 0 END", condition(p)))
                .collect();
            format!("({} >= {n})", counts.join(" + "))
        }
        Expr::Atom(atom) => atom_sql(atom),
    }
}

fn join(parts: &[Expr], with: &str) -> String {
    match parts {
        [] if with == " AND " => "true".to_owned(),
        [] => "false".to_owned(),
        [one] => condition(one),
        _ => format!(
            "({})",
            parts.iter().map(condition).collect::<Vec<_>>().join(with)
        ),
    }
}

fn atom_sql(atom: &Atom) -> String {
    let t = &atom.target.sql;
    match &atom.test {
        Test::Like { pieces, cased, .. } => match pieces.as_slice() {
            [Piece::Text(text)] if *cased => format!("{t} = {}", literal(text)),
            [Piece::Text(text)] => format!("lower({t}) = {}", literal(&text.to_lowercase())),
            [] => format!("{t} = ''"),
            _ => format!(
                "{t} {} {} ESCAPE '\\'",
                if *cased { "LIKE" } else { "ILIKE" },
                literal(&like_pattern(pieces))
            ),
        },
        Test::Regex(pattern) => format!("regexp_like({t}, {})", literal(pattern)),
        Test::IsNull => format!("{t} IS NULL"),
        Test::IsNotNull => format!("{t} IS NOT NULL"),
        Test::SameAs(other, _) => format!("lower({t}) = lower({})", other.sql),
        Test::Compare(op, number) => format!("TRY_CAST({t} AS DOUBLE) {op} {number:?}"),
    }
}

/// A `LIKE` pattern with `\` escaping the pattern characters of the text.
pub fn like_pattern(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Any => out.push('%'),
            Piece::One => out.push('_'),
            Piece::Text(text) => {
                for c in text.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}
