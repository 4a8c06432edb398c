//! A fast structural pass over JSON text, without recursion and without validation.
//!
//! Two jobs. First, a guard: sonic-rs validates skipped values recursively and has no
//! depth limit on that path, so a few thousand `[` would overflow the stack; every
//! document is measured here before sonic-rs sees it. Second, a shortcut: the elements
//! of a large `Records` or `entries` array are located here, so that sonic-rs parses
//! each element once instead of skipping the whole array first and parsing every
//! element again.
//!
//! The pass works on 64-byte blocks with bit masks (the simdjson technique): which bytes
//! are quotes, backslashes and brackets, which quotes are escaped, which bytes lie inside
//! strings. Nothing here decides whether JSON is valid: sonic-rs still parses every
//! byte that becomes a row, and any surprise here sends the document down the general
//! path, whose parser reports the error.

use wide::u8x32;

/// Deeper documents are rejected as `too_deep`; real audit events nest a few dozen
/// levels at most.
pub(crate) const MAX_NESTING: usize = 100;

/// Structure of one 64-byte block: bit i describes byte i.
struct Masks {
    quotes: u64,
    backslashes: u64,
    opens: u64,
    closes: u64,
}

#[inline(always)]
fn masks(block: &[u8; 64]) -> Masks {
    let (low, high) = block.split_at(32);
    let low = u8x32::new(low.try_into().expect("64 = 32 + 32"));
    let high = u8x32::new(high.try_into().expect("64 = 32 + 32"));
    let eq = |v: u8x32, byte: u8| v.simd_eq(u8x32::splat(byte)).to_bitmask();
    let mask =
        |l: u8x32, h: u8x32, byte: u8| u64::from(eq(l, byte)) | (u64::from(eq(h, byte)) << 32);
    // `[` and `{`, `]` and `}` differ only in bit 0x20; no other byte maps onto them.
    let fold = u8x32::splat(0x20);
    let (low_folded, high_folded) = (low | fold, high | fold);
    Masks {
        quotes: mask(low, high, b'"'),
        backslashes: mask(low, high, b'\\'),
        opens: mask(low_folded, high_folded, b'{'),
        closes: mask(low_folded, high_folded, b'}'),
    }
}

/// Carried from one block to the next.
#[derive(Default)]
struct BlockState {
    /// All ones while the previous block ended inside a string.
    in_string: u64,
    /// 1 when the previous block ended with an escaping backslash.
    escape_carry: u64,
}

impl BlockState {
    /// Brackets of the block that are not inside strings: (opens, closes).
    #[inline(always)]
    fn structural(&mut self, masks: &Masks) -> (u64, u64) {
        let escaped = escaped_bytes(masks.backslashes, &mut self.escape_carry);
        let quotes = masks.quotes & !escaped;
        let inside = prefix_xor(quotes) ^ self.in_string;
        self.in_string = 0u64.wrapping_sub(inside >> 63);
        (masks.opens & !inside, masks.closes & !inside)
    }
}

/// The 64-byte blocks of `json`, the last one padded with spaces (neither structure nor
/// escapes).
fn blocks(json: &[u8]) -> impl Iterator<Item = [u8; 64]> + '_ {
    let mut chunks = json.chunks_exact(64);
    let mut tail_done = false;
    std::iter::from_fn(move || {
        if let Some(block) = chunks.next() {
            return Some(block.try_into().expect("chunks_exact yields 64 bytes"));
        }
        let rest = chunks.remainder();
        if tail_done || rest.is_empty() {
            return None;
        }
        tail_done = true;
        let mut block = [b' '; 64];
        block[..rest.len()].copy_from_slice(rest);
        Some(block)
    })
}

/// Whether `json` opens more than `limit` arrays or objects at once, outside strings.
/// Exact on valid JSON; on invalid JSON it may err either way, which is harmless because
/// the parser rejects such input anyway.
pub(crate) fn exceeds(json: &[u8], limit: usize) -> bool {
    let limit = isize::try_from(limit).unwrap_or(isize::MAX);
    let mut state = BlockState::default();
    // Signed, so that a block's effect is the same taken whole or byte by byte; a
    // stray close bracket makes the text invalid, and the parser stops there.
    let mut depth = 0isize;
    for block in blocks(json) {
        let (opens, closes) = state.structural(&masks(&block));
        let open_count = opens.count_ones() as isize;
        if depth + open_count <= limit {
            // No order within the block can go past the limit.
            depth += open_count - closes.count_ones() as isize;
            continue;
        }
        let mut structure = opens | closes;
        while structure != 0 {
            let bit = structure & structure.wrapping_neg();
            if opens & bit != 0 {
                depth += 1;
                if depth > limit {
                    return true;
                }
            } else {
                depth -= 1;
            }
            structure &= structure - 1;
        }
    }
    false
}

/// Why a container could not be delimited.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    TooDeep,
    Unterminated,
}

/// `json[start]` is `{` or `[`: the index just past its matching bracket. Nesting deeper
/// than `limit` (the container itself counts 1) stops the scan.
pub(crate) fn container_end(json: &[u8], start: usize, limit: usize) -> Result<usize, Stop> {
    let mut state = BlockState::default();
    let mut depth = 0usize;
    for (n, block) in blocks(&json[start..]).enumerate() {
        let (opens, closes) = state.structural(&masks(&block));
        let open_count = opens.count_ones() as usize;
        let close_count = closes.count_ones() as usize;
        if depth + open_count <= limit && close_count < depth {
            // Cannot reach the limit nor close the container within this block.
            depth = depth + open_count - close_count;
            continue;
        }
        let mut structure = opens | closes;
        while structure != 0 {
            let bit = structure & structure.wrapping_neg();
            if opens & bit != 0 {
                depth += 1;
                if depth > limit {
                    return Err(Stop::TooDeep);
                }
            } else {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(start + n * 64 + bit.trailing_zeros() as usize + 1);
                }
            }
            structure &= structure - 1;
        }
    }
    Err(Stop::Unterminated)
}

/// Which array an envelope opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// `{"Records":[…]}`: CloudTrail events.
    Records,
    /// `{"entries":[…]}`: log entries.
    Entries,
}

/// An S3 `{"Records":[…]}` file or an `{"entries":[…]}` listing, recognised by its first
/// key: which one, and the index of the array's `[`.
pub(crate) fn envelope_array(json: &[u8]) -> Option<(Envelope, usize)> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    let rest = &json[i..];
    let envelope = if rest.starts_with(b"\"Records\"") {
        Envelope::Records
    } else if rest.starts_with(b"\"entries\"") {
        Envelope::Entries
    } else {
        return None;
    };
    i = skip_ws(json, i + "\"Records\"".len());
    if json.get(i) != Some(&b':') {
        return None;
    }
    i = skip_ws(json, i + 1);
    (json.get(i) == Some(&b'[')).then_some((envelope, i))
}

/// The spans of the object elements of the array whose `[` is at `open`, and the index
/// just past its `]`. `None` when the array holds anything but objects, is not
/// delimited as JSON requires, or nests deeper than `limit` (counted from the
/// elements): the caller then takes the general path.
pub(crate) fn object_elements(
    json: &[u8],
    open: usize,
    limit: usize,
) -> Option<(Vec<(usize, usize)>, usize)> {
    let mut spans = Vec::new();
    let mut i = skip_ws(json, open + 1);
    if json.get(i) == Some(&b']') {
        return Some((spans, i + 1));
    }
    loop {
        if json.get(i) != Some(&b'{') {
            return None;
        }
        let end = container_end(json, i, limit).ok()?;
        spans.push((i, end));
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b']') => return Some((spans, i + 1)),
            _ => return None,
        }
    }
}

/// Whether only `}` and whitespace follow `from`.
pub(crate) fn closes_object(json: &[u8], from: usize) -> bool {
    let i = skip_ws(json, from);
    json.get(i) == Some(&b'}') && skip_ws(json, i + 1) == json.len()
}

/// Whether only whitespace follows `from`.
pub(crate) fn only_whitespace(json: &[u8], from: usize) -> bool {
    skip_ws(json, from) == json.len()
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        i += 1;
    }
    i
}

/// Bytes escaped by a backslash (preceded by an odd run of backslashes), given the
/// backslash mask of a block; `carry` says whether the previous block ended with an
/// escaping backslash. This is simdjson's branch-free `find_escaped`.
fn escaped_bytes(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslashes = backslashes & !*carry;
    let follows_escape = (backslashes << 1) | *carry;
    let odd_sequence_starts = backslashes & !EVEN & !follows_escape;
    let (sequences_starting_on_even_bits, overflow) =
        odd_sequence_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    let invert = sequences_starting_on_even_bits << 1;
    (EVEN ^ invert) & follows_escape
}

/// Bit i of the result is the parity of the set bits of `x` at positions ≤ i.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious byte-by-byte depth scan, as the oracle for the block version.
    fn exceeds_scalar(json: &[u8], limit: isize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0isize, false, false);
        for byte in json {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                b']' | b'}' => depth -= 1,
                _ => {}
            }
        }
        false
    }

    /// JSON-like text: brackets, commas, numbers and strings with escapes, some long
    /// enough to cross a 64-byte block.
    fn json_like() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            prop::sample::select(vec!["[", "]", "{", "}", ",", "1", " ", "\n"])
                .prop_map(str::to_owned),
            prop::collection::vec(
                prop::sample::select(vec![
                    "a",
                    "[",
                    "{",
                    "}",
                    "]",
                    "\\\"",
                    "\\\\",
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                ]),
                0..8,
            )
            .prop_map(|parts| format!("\"{}\"", parts.concat())),
        ];
        prop::collection::vec(token, 0..80).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn block_scan_agrees_with_the_byte_scan(text in json_like(), limit in 0usize..12) {
            prop_assert_eq!(
                exceeds(text.as_bytes(), limit),
                exceeds_scalar(text.as_bytes(), limit as isize),
                "{}",
                text
            );
        }

        #[test]
        fn container_end_agrees_with_sonic(value in json_value(), pad in 0usize..70) {
            let text = format!("{}{}  ,1", " ".repeat(pad), value);
            let start = pad;
            let end = container_end(text.as_bytes(), start, 1_000).expect("valid JSON is delimited");
            let parsed: sonic_rs::Value = sonic_rs::from_str(&text[start..end]).expect("span is the value");
            let original: sonic_rs::Value = sonic_rs::from_str(&value).expect("generated JSON is valid");
            prop_assert_eq!(parsed, original);
        }

        #[test]
        fn object_elements_finds_every_element(values in prop::collection::vec(json_object(), 0..6)) {
            let text = format!("{{ \"Records\" : [ {} ] }}", values.join(" ,\n"));
            let (_, open) = envelope_array(text.as_bytes()).expect("envelope");
            let (spans, after) = object_elements(text.as_bytes(), open, 1_000).expect("elements");
            prop_assert!(closes_object(text.as_bytes(), after));
            let found: Vec<&str> = spans.iter().map(|(s, e)| &text[*s..*e]).collect();
            let expected: Vec<&str> = values.iter().map(String::as_str).collect();
            prop_assert_eq!(found, expected);
        }
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("1.5".to_owned()),
            "[a-z\\[\\]{}\"\\\\]{0,40}".prop_map(|s| serde_json::to_string(&s).expect("string")),
        ];
        leaf.prop_recursive(6, 60, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(inner, 0..5).prop_map(|v| {
                    let members: Vec<String> = v
                        .iter()
                        .enumerate()
                        .map(|(i, x)| format!("\"k{i}\" : {x}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
        .prop_filter("containers only", |s| {
            s.starts_with('[') || s.starts_with('{')
        })
    }

    fn json_object() -> impl Strategy<Value = String> {
        json_value().prop_map(|v| format!("{{\"v\":{v}}}"))
    }

    #[test]
    fn counts_only_structure_outside_strings() {
        assert!(!exceeds(br#"{"a":[1,{"b":"[[[[[[["}]}"#, 3));
        assert!(exceeds(br#"{"a":[1,{"b":[[]]}]}"#, 4));
        assert!(!exceeds(br#"{"a":[1,{"b":[[]]}]}"#, 5));
        assert!(!exceeds(br#"{"a":"\"[[[[\\","b":1}"#, 1));
    }

    #[test]
    fn long_strings_across_blocks() {
        let text = format!(
            "{{\"a\":\"{}[[[[\\\"{}\",\"b\":[[1]]}}",
            "x".repeat(70),
            "\\\\".repeat(40)
        );
        assert_eq!(
            exceeds(text.as_bytes(), 2),
            exceeds_scalar(text.as_bytes(), 2)
        );
        assert!(exceeds(text.as_bytes(), 2));
        assert!(!exceeds(text.as_bytes(), 3));
    }

    #[test]
    fn container_end_stops_at_the_limit_and_at_the_end() {
        assert_eq!(container_end(b"[[[]]]", 0, 2), Err(Stop::TooDeep));
        assert_eq!(container_end(b"[[[]]]", 0, 3), Ok(6));
        assert_eq!(container_end(b"[[[]]", 0, 3), Err(Stop::Unterminated));
        assert_eq!(container_end(b"x{\"}\"}y", 1, 3), Ok(6));
    }

    #[test]
    fn envelopes_are_recognised_by_their_opening() {
        assert_eq!(
            envelope_array(b" {\n \"Records\" :\n[ ]}"),
            Some((Envelope::Records, 16))
        );
        assert_eq!(
            envelope_array(br#"{"entries":[]}"#),
            Some((Envelope::Entries, 11))
        );
        assert_eq!(envelope_array(br#"{"other":[], "Records":[]}"#), None);
        assert_eq!(envelope_array(br#"{"Records":{}}"#), None);
    }

    #[test]
    fn object_elements_refuses_what_it_cannot_delimit() {
        let missing_comma = br#"{"Records":[{"a":1} {"b":2}]}"#;
        assert_eq!(object_elements(missing_comma, 11, 100), None);
        let scalar = br#"{"Records":[1]}"#;
        assert_eq!(object_elements(scalar, 11, 100), None);
        let too_deep = br#"{"Records":[{"a":[[[1]]]}]}"#;
        assert_eq!(object_elements(too_deep, 11, 3), None);
        assert!(object_elements(too_deep, 11, 4).is_some());
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        assert!(!exceeds(br#"{"a":"\"#, 5));
        assert!(!exceeds(b"\"", 5));
        assert!(exceeds(&[b'['; 10], 5));
        assert_eq!(object_elements(b"[", 0, 5), None);
        assert_eq!(object_elements(b"[{", 0, 5), None);
    }
}
