//! Pub/Sub envelopes: the `data` of a push request's `message`, in base64.

use std::borrow::Cow;

use base64::Engine as _;

use crate::{lenient, parse_nested};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PubSubMessage<'a> {
    #[serde(borrow)]
    data: lenient::Text<'a>,
}

/// Pub/Sub clients differ in alphabet and padding; both alphabets are tried, padding is
/// optional.
const BASE64_CONFIG: base64::engine::GeneralPurposeConfig =
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
const BASE64_STANDARD: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, BASE64_CONFIG);

/// The `data` of a push request's `message` (its JSON text), if it has one.
pub(crate) fn message_data(message: &str) -> Option<Cow<'_, str>> {
    parse_nested::<lenient::Obj<PubSubMessage<'_>>>(message)
        .and_then(|m| m.0)
        .and_then(|m| m.data.0)
}

/// `data` decoded, in either alphabet.
pub(crate) fn decode(data: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let data = data.trim();
    BASE64_STANDARD
        .decode(data)
        .or_else(|_| BASE64_URL_SAFE.decode(data))
}
