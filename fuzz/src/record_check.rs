//! The record property, shared by the fuzz targets and `tests/fuzz_props.rs` (which includes
//! this file by path, so the property is written once while `fuzz/` stays out of the main
//! crate's build).

use express_session::codec;

/// Checks one record text against `decode`: it never panics, and what decodes re-encodes to
/// text that decodes to the same cookie and data again and encodes to the same text (a fixed
/// point). Returns whether the text decoded.
///
/// Data is compared as the text `encode` writes, where numbers are written as JavaScript
/// writes them: `0.0` in the input may come back as `0`, the same number to JavaScript, but a
/// float that moved by one bit changes the text (serde_json's `float_roundtrip` is on: without
/// it, `4.5000000000000005e300` read as the float next to it).
pub(crate) fn check_record(text: &str, max_len: usize) -> bool {
    let Ok((cookie, data)) = codec::decode(text, max_len) else {
        return false;
    };
    let encoded = codec::encode(&cookie, &data);
    let (cookie2, data2) = codec::decode(&encoded, usize::MAX)
        .unwrap_or_else(|e| panic!("re-encoded record does not decode ({e}): {encoded}"));
    assert_eq!(cookie2, cookie, "cookie changed through encode: {text} -> {encoded}");
    assert_eq!(
        codec::encode(&cookie2, &data2),
        encoded,
        "data changed through encode and decode: {text}"
    );
    true
}
