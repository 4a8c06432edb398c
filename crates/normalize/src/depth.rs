//! Nesting depth of a JSON text, measured without recursion.
//!
//! sonic-rs validates skipped values recursively and has no depth limit on that path, so
//! a few thousand `[` overflow the stack. Every document is measured here first; real
//! audit events nest a few dozen levels at most.

/// Deeper documents are rejected as `too_deep`.
pub(crate) const MAX_NESTING: usize = 100;

/// Whether `json` opens more than `limit` arrays or objects at once, outside strings.
/// Exact on valid JSON; on invalid JSON it may err either way, which is harmless because
/// the parser rejects such input anyway.
pub(crate) fn exceeds(json: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // Jump to the closing quote, stepping over escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &json[i.min(json.len())..]) {
                        Some(offset) if json[i + offset] == b'\\' => i += offset + 2,
                        Some(offset) => {
                            i += offset;
                            break;
                        }
                        None => return false,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_structure_outside_strings() {
        assert!(!exceeds(br#"{"a":[1,{"b":"[[[[[[["}]}"#, 3));
        assert!(exceeds(br#"{"a":[1,{"b":[[]]}]}"#, 4));
        assert!(!exceeds(br#"{"a":[1,{"b":[[]]}]}"#, 5));
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        assert!(!exceeds(br#"{"a":"\"[[[[\\","b":1}"#, 1));
        assert!(exceeds(br#"{"a":"\\","b":[[1]]}"#, 2));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        assert!(!exceeds(br#"{"a":"\"#, 5));
        assert!(!exceeds(b"\"", 5));
        assert!(exceeds(&[b'['; 10], 5));
    }
}
