//! Gzip input, decompressed into a reused buffer sized by what the input really holds.

use std::io::Read as _;

use crate::RejectReason;

/// Decompression buffers up to this size are kept for the next input.
pub(crate) const KEPT_GZIP_BUFFER: usize = 64 << 20;

/// How many times its own size a gzip input is first given room to expand to, at
/// most: CloudTrail and Cloud Logging files expand 5 to 20 times.
const FIRST_GZIP_RATIO: usize = 32;

/// Decompresses gzip `bytes` into `buffer` (which keeps its length, to be reused without
/// zero-filling) and returns the length of the output. A single gzip member, as
/// CloudTrail and Cloud Logging write, goes through libdeflate, into a buffer sized by
/// the member's own length trailer but never beyond [`FIRST_GZIP_RATIO`] times the
/// input (a 30-byte input claiming 4 GiB gets 64 KiB), doubled while the output
/// really is larger, up to `limit`; concatenated members, and anything libdeflate
/// refuses, go through flate2's streaming decoder, which also says what is wrong.
pub(crate) fn gunzip(
    bytes: &[u8],
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, (RejectReason, String)> {
    let too_big = || {
        (
            RejectReason::Oversize,
            format!("gzip input expands past the {limit}-byte limit"),
        )
    };
    // The last 8 bytes are the CRC-32 and length (mod 2^32) of the last member.
    let trailer = |at: usize| -> u32 {
        let start = bytes.len().saturating_sub(at);
        let word: [u8; 4] = bytes[start..(start + 4).min(bytes.len())]
            .try_into()
            .unwrap_or([0; 4]);
        u32::from_le_bytes(word)
    };
    let (trailer_crc, trailer_len) = (trailer(8), trailer(4));
    // The trailer is the input's own claim: believed only as far as an input of this
    // size plausibly expands. Beyond that the buffer grows with the real output.
    let plausible = bytes.len().saturating_mul(FIRST_GZIP_RATIO).max(64 << 10);
    let mut size = (trailer_len as usize).min(plausible).min(limit).max(1);
    let mut decompressor = libdeflater::Decompressor::new();
    loop {
        if buffer.len() < size {
            buffer.resize(size, 0);
        }
        match decompressor.gzip_decompress(bytes, &mut buffer[..size]) {
            // libdeflate reads the first member only: the input's own trailer tells
            // whether that was all of it.
            Ok(len)
                if trailer_len == len as u32
                    && trailer_crc == libdeflater::crc32(&buffer[..len]) =>
            {
                return Ok(len);
            }
            Ok(_) => break,
            Err(libdeflater::DecompressionError::InsufficientSpace) if size < limit => {
                size = size.saturating_mul(2).min(limit);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) => return Err(too_big()),
            Err(libdeflater::DecompressionError::BadData) => break,
        }
    }
    let mut plain = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(limit as u64 + 1);
    decoder.read_to_end(&mut plain).map_err(|e| {
        (
            RejectReason::BadGzip,
            format!("gzip stream is corrupt: {e}"),
        )
    })?;
    if plain.len() > limit {
        return Err(too_big());
    }
    let len = plain.len();
    *buffer = plain;
    Ok(len)
}
