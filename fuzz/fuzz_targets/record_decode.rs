//! `codec::decode` on a stored record's text: arbitrary text, and valid records with a span
//! replaced by arbitrary text.
//!
//! Checks: no panic, under the default and a small size limit; whatever decodes re-encodes with
//! `codec::encode` to text that decodes to the same cookie and data, and encodes to the same text
//! again.

#![no_main]

use express_session::DEFAULT_MAX_RECORD_SIZE;
use express_session_fuzz::check_record;
use libfuzzer_sys::fuzz_target;

/// Valid records in express's shape, to be mutated.
const BASES: &[&str] = &[
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}}"#,
    r#"{"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/"},"views":3}"#,
    r#"{"cookie":{"originalMaxAge":3600000,"partitioned":true,"priority":"high","expires":"2026-01-01T13:00:00.000Z","secure":true,"httpOnly":false,"domain":"example.com","path":"/app","sameSite":"strict"},"user":{"id":42,"roles":["a","b"]},"n":-1.5e300}"#,
    r#"{"cookie":{"originalMaxAge":1e3,"expires":"9999-12-31T23:59:59.999Z","sameSite":true},"a":"\u00e9\ud83d\ude00","b":null,"save":1}"#,
    r#"{"cookie":{"originalMaxAge":-5,"expires":"0001-01-01T00:00:00.5+01:00","secure":false,"priority":"Low"},"x":[1.25,{"y":"z"}]}"#,
    r#"{"cookie":{"originalMaxAge":null,"expires":"9999-12-31T20:00:00.000-03:00","sameSite":"None"},"k":"v"}"#,
];

fuzz_target!(|data: &[u8]| {
    check_record(&String::from_utf8_lossy(data), DEFAULT_MAX_RECORD_SIZE);
    // A span of a valid record replaced by the rest of the input: which record, where and how
    // long a span come from the first four bytes.
    let [which, at_hi, at_lo, len, rest @ ..] = data else {
        return;
    };
    let base = BASES[usize::from(*which) % BASES.len()];
    let at = usize::from(u16::from_be_bytes([*at_hi, *at_lo])) % (base.len() + 1);
    let start = floor_boundary(base, at);
    let end = floor_boundary(base, (start + usize::from(*len) % 32).min(base.len()));
    let spliced = format!("{}{}{}", &base[..start], String::from_utf8_lossy(rest), &base[end..]);
    check_record(&spliced, DEFAULT_MAX_RECORD_SIZE);
    check_record(&spliced, usize::from(*len));
});

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
