//! Telling NDJSON (one document per line) from one document, and cutting it in lines.

use crate::scan;

/// Whether an input that starts with `prefix` (its first few MiB, say) is NDJSON, so
/// that it can be read in runs of whole lines with [`Normalizer::push_lines`]
/// instead of whole. Gzip is not looked through: pass decompressed bytes.
pub fn looks_like_ndjson(prefix: &[u8]) -> bool {
    let prefix = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    prefix
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|start| is_ndjson(&prefix[start..]))
}

/// Several JSON documents, one per line, rather than one (possibly pretty-printed)
/// document. Either the first line is a complete JSON value and more follows; or the
/// first document does not end where its first line does: if it is complete and alone,
/// this is one document, and if it never closes (a broken first line), the input is
/// NDJSON when one of the next two lines is a complete JSON object on its own, which no
/// line of a pretty-printed document is.
pub(crate) fn is_ndjson(body: &[u8]) -> bool {
    let mut lines = lines(body)
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    let mut rest = lines.take(2).peekable();
    if rest.peek().is_none() {
        return false;
    }
    let complete = |line: &[u8]| {
        !scan::exceeds(line, scan::MAX_NESTING)
            && sonic_rs::from_slice::<serde::de::IgnoredAny>(line).is_ok()
    };
    if complete(first) {
        return true;
    }
    match scan::container_end(body, 0, scan::MAX_NESTING) {
        Err(scan::Stop::Unterminated) => {
            rest.any(|line| line.first() == Some(&b'{') && complete(line))
        }
        Ok(_) | Err(scan::Stop::TooDeep) => false,
    }
}

/// The lines of `body`, split at `\n`.
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', body);
    std::iter::from_fn(move || {
        if start > body.len() {
            return None;
        }
        let end = ends.next().unwrap_or(body.len());
        let line = &body[start..end];
        start = end + 1;
        Some(line)
    })
}
