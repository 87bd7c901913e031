//! `cookie::unsign` on arbitrary values and secrets, and on signed values with one change.
//!
//! Checks: no panic; `unsign` returns an id exactly when one of the secrets signed that id to
//! this very value (`sign(id, secret) == value`, the id being all before the last `.`); a value
//! signed by one of the secrets always unsigns to its id.

#![no_main]

use express_session::cookie::{sign, unsign};
use libfuzzer_sys::{
    arbitrary::{self, Arbitrary},
    fuzz_target,
};

#[derive(Arbitrary, Debug)]
struct Input {
    /// A value as it comes.
    value: String,
    /// An id to sign, and one change to make to its signed value.
    id: String,
    change: Option<(u16, char)>,
    secrets: Vec<Vec<u8>>,
}

/// Whether one of `secrets` signed `value`, by signing again.
fn signed_by_one_of(value: &str, secrets: &[Vec<u8>]) -> Option<String> {
    let (id, _) = value.rsplit_once('.')?;
    secrets.iter().any(|s| sign(id, s) == value).then(|| id.to_owned())
}

fuzz_target!(|input: Input| {
    let Input {
        value,
        id,
        change,
        secrets,
    } = input;
    assert_eq!(
        unsign(&value, &secrets).map(str::to_owned),
        signed_by_one_of(&value, &secrets),
        "{value:?}"
    );
    let Some(first) = secrets.first() else {
        return;
    };
    let signed = sign(&id, first);
    assert_eq!(unsign(&signed, &secrets), Some(id.as_str()));
    if let Some((at, c)) = change {
        let mut chars: Vec<char> = signed.chars().collect();
        let at = usize::from(at) % chars.len();
        chars[at] = c;
        let changed: String = chars.into_iter().collect();
        assert_eq!(
            unsign(&changed, &secrets).map(str::to_owned),
            signed_by_one_of(&changed, &secrets),
            "{changed:?}"
        );
    }
});
