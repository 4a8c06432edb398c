//! Query errors for a person: the message, and the offending part of the query marked
//! under its line.

use datafusion::error::DataFusionError;

/// `error` as text, with the line of `sql` it points at and a caret under the span
/// (from DataFusion's diagnostic, or the parser's "at Line: L, Column: C").
pub fn render(sql: &str, error: &DataFusionError) -> String {
    let mut out = String::new();
    let span = match error.diagnostic() {
        Some(d) => {
            out.push_str(&d.message);
            d.span.map(|s| {
                let width = if s.end.line == s.start.line {
                    s.end.column.saturating_sub(s.start.column)
                } else {
                    0
                };
                (s.start.line, s.start.column, width)
            })
        }
        None => {
            out.push_str(&error.strip_backtrace());
            parser_position(&error.strip_backtrace()).map(|(l, c)| (l, c, 1))
        }
    };
    if let Some((line, column, width)) = span {
        let text = usize::try_from(line)
            .ok()
            .and_then(|l| sql.lines().nth(l.saturating_sub(1)));
        if let Some(text) = text {
            let pad: String = text
                .chars()
                .take(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = usize::try_from(width.max(1)).unwrap_or(1);
            out.push_str(&format!(
                "\n  --> line {line}, column {column}\n  | {text}\n  | {pad}{}",
                "^".repeat(width)
            ));
        }
    }
    if let Some(d) = error.diagnostic() {
        for help in &d.helps {
            out.push_str(&format!("\nhelp: {}", help.message));
        }
        for note in &d.notes {
            out.push_str(&format!("\nnote: {}", note.message));
        }
    }
    out
}

/// Line and column from a parser message: `… at Line: 1, Column: 8`.
fn parser_position(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind("Line: ")? + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_position_is_read_from_the_message() {
        assert_eq!(
            parser_position(
                "sql parser error: Expected: end of statement, found: x at Line: 2, Column: 17"
            ),
            Some((2, 17))
        );
        assert_eq!(parser_position("no position"), None);
    }
}
