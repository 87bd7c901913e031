//! `Cookie` request headers through a real `SessionLayer` over a `CountingStore<MemoryStore>`:
//! one or several fields built from raw bytes and from validly signed values (of a stored
//! session and of an unknown id) written in several forms, some of them broken.
//!
//! Checks: no panic and no 5xx; the store is called only when the reference reading finds a
//! validly signed id, and then the layer picks that same id (the stored session loads, the
//! unknown one starts a new session); a request that finds nothing gets no `Set-Cookie`.

#![no_main]

use express_session_fuzz::{
    harness, raw_signed_value, reference_session_id, secrets, signed_value, valid_fields, NAME, STORED_ID,
    STORED_RECORD,
};
use libfuzzer_sys::{
    arbitrary::{self, Arbitrary},
    fuzz_target,
};

/// One piece of a header.
#[derive(Arbitrary, Debug)]
enum Piece {
    /// Bytes as they come.
    Bytes(Vec<u8>),
    /// The session cookie's name.
    Name,
    /// `=`.
    Eq,
    /// `; `.
    Sep,
    /// Ends this `Cookie` field; the next piece starts another.
    NextField,
    /// A validly signed value: of the stored session if `stored`, else of an unknown id.
    Signed { stored: bool, form: Form },
}

/// How a signed value is written.
#[derive(Arbitrary, Debug)]
enum Form {
    /// `encodeURIComponent("s:" + signed)`, as express writes it.
    Encoded,
    /// `s:` + signed, not encoded.
    Raw,
    /// In double quotes.
    Quoted,
    /// Every byte as `%XX`, in lower or upper case hex.
    Escaped { lower: bool },
    /// One byte replaced.
    Mutated { at: u16, byte: u8 },
    /// Cut short.
    Truncated { len: u16 },
    /// With bytes added at the end.
    Extended(Vec<u8>),
}

fn written(stored: bool, form: &Form) -> Vec<u8> {
    let mut v = signed_value(stored).into_bytes();
    match form {
        Form::Encoded => {}
        Form::Raw => v = raw_signed_value(stored).into_bytes(),
        Form::Quoted => {
            v.insert(0, b'"');
            v.push(b'"');
        }
        Form::Escaped { lower } => {
            v = raw_signed_value(stored)
                .bytes()
                .flat_map(|b| match lower {
                    true => format!("%{b:02x}").into_bytes(),
                    false => format!("%{b:02X}").into_bytes(),
                })
                .collect()
        }
        Form::Mutated { at, byte } => {
            let at = usize::from(*at) % v.len();
            v[at] = *byte;
        }
        Form::Truncated { len } => v.truncate(usize::from(*len) % v.len()),
        Form::Extended(more) => v.extend_from_slice(more),
    }
    v
}

fuzz_target!(|pieces: Vec<Piece>| {
    let mut fields = vec![Vec::new()];
    for piece in &pieces {
        let field = fields.last_mut().expect("at least one field");
        match piece {
            Piece::Bytes(b) => field.extend_from_slice(b),
            Piece::Name => field.extend_from_slice(NAME.as_bytes()),
            Piece::Eq => field.push(b'='),
            Piece::Sep => field.extend_from_slice(b"; "),
            Piece::NextField => fields.push(Vec::new()),
            Piece::Signed { stored, form } => field.extend_from_slice(&written(*stored, form)),
        }
    }
    let h = harness();
    h.store_record(STORED_RECORD);
    let reply = h.get("/", &fields);
    let counts = h.store.counts();
    assert!(!reply.status.is_server_error(), "{reply:?} for {fields:?}");
    let loads = counts.load + counts.load_and_touch;
    match reference_session_id(&valid_fields(&fields), &secrets()) {
        None => {
            assert_eq!(counts.total(), 0, "store called without a signed id: {fields:?}");
            assert_eq!((reply.body.as_str(), reply.set_cookies), ("new ", 0), "{fields:?}");
        }
        Some(id) if id == STORED_ID => {
            assert_eq!(loads, 1, "{fields:?}");
            assert_eq!(reply.body, "loaded fuzz", "{fields:?}");
        }
        Some(_) => {
            assert_eq!(loads, 1, "{fields:?}");
            assert_eq!((reply.body.as_str(), reply.set_cookies), ("new ", 0), "{fields:?}");
        }
    }
});
