//! The [`Session`] handle a request's handlers use.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    codec::{self, same_data, same_json, Data},
    config::{Config, CREATED_AT_KEY},
    cookie::{self, SessionCookie},
    decoded::DecodedCache,
    error::SessionError,
    store::{from_unix_ms, unix_ms, Record, SessionStore, Update},
    turns::{SaveTurns, Ticket, Turn},
};

/// What a layer's sessions share: the configuration and the store.
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// The secrets, keyed for HMAC once.
    pub(crate) keys: cookie::Keys,
    pub(crate) store: Arc<dyn SessionStore>,
    /// Saves of one session from this process take turns (see [`crate::turns`]).
    pub(crate) turns: SaveTurns<Session>,
    /// Sessions recently loaded or saved, decoded (see [`crate::decoded`]).
    pub(crate) decoded: DecodedCache,
    /// No data: what new sessions start from, shared until one of them changes.
    pub(crate) empty: Arc<Data>,
}

impl Shared {
    pub(crate) fn genid(&self) -> String {
        match &self.config.genid {
            Some(f) => f(),
            None => generate_id(),
        }
    }
}

/// A new session id as express-session's default `uid-safe(24)` makes it: 24 random bytes in
/// URL-safe base64 without padding, 32 characters (192 bits).
///
/// The bytes come from `rand`'s thread-local CSPRNG (ChaCha12, seeded from the operating
/// system's CSPRNG and reseeded from it periodically), so a new session does not cost a system
/// call: the generator OWASP ASVS 11.5.2 asks for under heavy demand.
///
/// ```
/// let id = express_session::generate_id();
/// assert_eq!(id.len(), 32);
/// assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
/// ```
pub fn generate_id() -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// When the session in `data` began, per [`CREATED_AT_KEY`]; `None` if it does not say.
pub(crate) fn created_at(data: &Data) -> Option<OffsetDateTime> {
    let ms = data.get(CREATED_AT_KEY)?.as_i64()?;
    from_unix_ms(ms)
}

type UpdateFn = Arc<dyn Fn(Option<&Value>) -> Value + Send + Sync>;

/// One key's change since the session was loaded or last saved, replayed onto the stored record
/// when a save conflicts with a concurrent writer.
#[derive(Clone)]
enum Change {
    Set(Value),
    Remove,
    Update(Vec<UpdateFn>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Live,
    /// `destroy()` was called in this request.
    Destroyed,
    /// The session was destroyed by someone else; found on save.
    Gone,
    /// `unset()` (express's `req.session = null`).
    Unset,
}

struct Inner {
    id: String,
    state: State,
    cookie: SessionCookie,
    data: Arc<Data>,
    /// The id and data when the session was loaded or generated (express's `originalId` and
    /// `originalHash`).
    original_id: String,
    original: Arc<Data>,
    /// The data as last saved (express's `savedHash`); `None`: never saved in this request.
    saved: Option<Arc<Data>>,
    /// The id the request's cookie carried, if its signature verified.
    cookie_id: Option<String>,
    /// The record as the store last held it, the version for compare-and-set; `None` while
    /// the session is not in the store.
    stored: Option<Record>,
    changes: Vec<(String, Change)>,
    mutated: bool,
    secure_request: bool,
    /// The store expiry as loaded, and the lifetime a load-time touch already gave the record.
    store_expires: Option<OffsetDateTime>,
    touched_on_load: Option<Option<i64>>,
    /// A new session not started yet: no id, cookie or data until something looks at it
    /// ([`Session::lock`] starts it). A request that never touches its session costs no id.
    pending: bool,
}

impl Inner {
    /// The stand-in for a new session until it is first used: nothing allocated, no id drawn.
    fn pending(shared: &Shared, cookie_id: Option<String>, secure_request: bool) -> Self {
        let mut inner = Self::new_session(
            String::new(),
            SessionCookie::unset(),
            Arc::clone(&shared.empty),
            secure_request,
        );
        inner.cookie_id = cookie_id;
        inner.pending = true;
        inner
    }

    /// Starts a pending session: a new id (the layer's `genid`), the cookie from the options.
    fn start(&mut self, shared: &Shared) {
        let cookie_id = self.cookie_id.take();
        *self = Self::fresh(shared, shared.genid(), self.secure_request);
        self.cookie_id = cookie_id;
    }

    fn fresh(shared: &Shared, id: String, secure_request: bool) -> Self {
        let now = OffsetDateTime::now_utc();
        let cookie = SessionCookie::from_config(&shared.config.cookie, secure_request, now);
        let empty = if shared.config.absolute_timeout.is_some() {
            // Part of the session from the start, like its cookie: not a change by the handler,
            // so an otherwise untouched new session is still uninitialized.
            let mut start = Data::new();
            start.insert(CREATED_AT_KEY.to_owned(), unix_ms(now).into());
            Arc::new(start)
        } else {
            Arc::clone(&shared.empty)
        };
        Self::new_session(id, cookie, empty, secure_request)
    }

    /// A session that is not in the store, with no changes yet.
    fn new_session(id: String, cookie: SessionCookie, data: Arc<Data>, secure_request: bool) -> Self {
        Self {
            original_id: id.clone(),
            id,
            state: State::Live,
            cookie,
            original: Arc::clone(&data),
            data,
            saved: None,
            cookie_id: None,
            stored: None,
            changes: Vec::new(),
            mutated: false,
            secure_request,
            store_expires: None,
            touched_on_load: None,
            pending: false,
        }
    }

    fn is_modified(&self) -> bool {
        self.original_id != self.id
            || (self.mutated && !Arc::ptr_eq(&self.data, &self.original) && !same_data(&self.data, &self.original))
    }

    fn is_saved(&self) -> bool {
        self.original_id == self.id
            && self
                .saved
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, &self.data) || same_data(s, &self.data))
    }

    /// express's secure gate: a `Secure` cookie is never sent in answer to an insecure request.
    fn cookie_allowed(&self) -> bool {
        self.secure_request || self.cookie.secure != Some(true)
    }

    fn live(&self) -> Result<(), SessionError> {
        match self.state {
            State::Live => Ok(()),
            _ => Err(SessionError::Destroyed),
        }
    }

    fn record_change(&mut self, key: &str, change: Change) {
        self.mutated = true;
        match self.changes.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => match (slot, change) {
                (Change::Update(fs), Change::Update(mut more)) => fs.append(&mut more),
                (slot, change) => *slot = change,
            },
            None => self.changes.push((key.to_owned(), change)),
        }
    }

    fn record(&self) -> Record {
        Record::new(codec::encode(&self.cookie, &self.data), self.cookie.expires)
    }
}

/// Sets `key` in `data`, in place when it is there (no new key string), else at the end.
fn put(data: &mut Data, key: &str, value: Value) {
    match data.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            data.insert(key.to_owned(), value);
        }
    }
}

fn apply(changes: &[(String, Change)], mut base: Data) -> Data {
    for (key, change) in changes {
        match change {
            Change::Set(v) => put(&mut base, key, v.clone()),
            Change::Remove => {
                base.shift_remove(key);
            }
            Change::Update(fs) => {
                let mut v = base.get(key).cloned();
                for f in fs {
                    v = Some(f(v.as_ref()));
                }
                if let Some(v) = v {
                    put(&mut base, key, v);
                }
            }
        }
    }
    base
}

/// A request's session: express's `req.session`.
///
/// The layer puts one in every request's extensions (axum handlers take it as an extractor).
/// Clones share the same session. Data is JSON: values go in with [`insert`](Self::insert) and
/// come out typed with [`get`](Self::get). Nothing is written to the store until the handler is
/// done (or it calls [`save`](Self::save)); then the layer saves, touches and sets the cookie by
/// express-session's rules.
///
/// ```
/// use axum::{routing::get, Router};
/// use express_session::{MemoryStore, Session, SessionLayer};
///
/// async fn visits(session: Session) -> String {
///     let n = session.update("views", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
///     format!("{n} visits")
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(visits))
///     .layer(SessionLayer::new(MemoryStore::new()).secret("keyboard cat"));
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Mutex<Inner>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock_raw();
        f.debug_struct("Session")
            .field("id", &"<redacted>")
            .field("state", &g.state)
            .field("keys", &g.data.len())
            .finish()
    }
}

impl Session {
    /// The session's state, started first if it is a pending new session: everything that
    /// reads or changes the session goes through here.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut g = self.lock_raw();
        if g.pending {
            g.start(&self.shared);
        }
        g
    }

    /// The state as it is, possibly pending.
    fn lock_raw(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrap(shared: Arc<Shared>, inner: Inner) -> Self {
        Self {
            inner: Arc::new(Mutex::new(inner)),
            shared,
        }
    }

    /// A brand-new session (no cookie, or the cookie's session is not in the store). Its id
    /// is drawn, and its cookie made, when the session is first used: a request whose handler
    /// never touches it (and, without `save_uninitialized`, never sends a cookie) skips both.
    pub(crate) fn generate(shared: Arc<Shared>, cookie_id: Option<String>, secure_request: bool) -> Self {
        let inner = Inner::pending(&shared, cookie_id, secure_request);
        Self::wrap(shared, inner)
    }

    /// A session loaded from its record.
    pub(crate) fn loaded(
        shared: Arc<Shared>,
        id: String,
        record: Record,
        cookie: SessionCookie,
        data: Arc<Data>,
        secure_request: bool,
        touched_on_load: Option<Option<i64>>,
    ) -> Self {
        let resave = shared.config.resave;
        let inner = Inner {
            original_id: id.clone(),
            cookie_id: Some(id.clone()),
            id,
            state: State::Live,
            cookie,
            original: Arc::clone(&data),
            saved: (!resave).then(|| Arc::clone(&data)),
            data,
            store_expires: record.expires,
            stored: Some(record),
            changes: Vec::new(),
            mutated: false,
            secure_request,
            touched_on_load,
            pending: false,
        };
        Self::wrap(shared, inner)
    }

    /// Starts the absolute lifetime of a loaded session that has no start recorded: a change,
    /// so it is saved at the end of the request.
    pub(crate) fn record_created_now(&self) {
        let now = Value::from(unix_ms(OffsetDateTime::now_utc()));
        let mut g = self.lock();
        Arc::make_mut(&mut g.data).insert(CREATED_AT_KEY.to_owned(), now.clone());
        g.record_change(CREATED_AT_KEY, Change::Set(now));
    }

    /// The session id. Treat it as a secret: it is the user's credential.
    pub fn id(&self) -> String {
        self.lock().id.clone()
    }

    /// True if the session was created in this request (it did not come from the store).
    pub fn is_new(&self) -> bool {
        let g = self.lock();
        g.cookie_id.as_deref() != Some(g.id.as_str())
    }

    /// The value under `key`, deserialized as `T`; `None` if it is absent or not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let g = self.lock();
        g.data.get(key).and_then(|v| T::deserialize(v).ok())
    }

    /// The value under `key`, deserialized as `T`, with the error when it is not a `T`.
    pub fn try_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let g = self.lock();
        g.data
            .get(key)
            .map(|v| T::deserialize(v).map_err(SessionError::from))
            .transpose()
    }

    /// The JSON value under `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.lock().data.get(key).cloned()
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`SessionError::Json`] if `value` cannot be represented as JSON, and
    /// [`SessionError::Destroyed`] after [`destroy`](Self::destroy) or [`unset`](Self::unset).
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value)?;
        self.insert_value(key, value)
    }

    /// Stores a JSON value under `key`. The key `cookie` is reserved and refused, as are the
    /// other keys express-session cannot load ([`RESERVED_KEYS`](crate::codec::RESERVED_KEYS)).
    ///
    /// # Errors
    /// [`SessionError::Destroyed`] after [`destroy`](Self::destroy) or [`unset`](Self::unset),
    /// and [`SessionError::ReservedKey`] for a reserved key.
    pub fn insert_value(&self, key: &str, value: Value) -> Result<(), SessionError> {
        if codec::RESERVED_KEYS.contains(&key) {
            return Err(SessionError::ReservedKey(key.to_owned()));
        }
        let mut g = self.lock();
        g.live()?;
        if g.data.get(key).is_some_and(|old| same_json(old, &value)) {
            return Ok(());
        }
        put(Arc::make_mut(&mut g.data), key, value.clone());
        g.record_change(key, Change::Set(value));
        Ok(())
    }

    /// Removes `key` and returns its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut g = self.lock();
        if g.live().is_err() || !g.data.contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(&mut g.data).shift_remove(key);
        g.record_change(key, Change::Remove);
        old
    }

    /// Removes every key (but [`CREATED_AT_KEY`](crate::CREATED_AT_KEY) when
    /// [`absolute_timeout`](crate::SessionLayer::absolute_timeout) is set: emptying a session
    /// does not restart its lifetime; [`regenerate`](Self::regenerate) does).
    pub fn clear(&self) {
        let mut g = self.lock();
        let keep_created = self.shared.config.absolute_timeout.is_some();
        let keys: Vec<String> = g
            .data
            .keys()
            .filter(|k| !(keep_created && k.as_str() == CREATED_AT_KEY))
            .cloned()
            .collect();
        if g.live().is_err() || keys.is_empty() {
            return;
        }
        let data = Arc::make_mut(&mut g.data);
        for k in &keys {
            data.remove(k);
        }
        for k in keys {
            g.record_change(&k, Change::Remove);
        }
    }

    /// Read-modify-write of one key that loses nothing to concurrent requests: `f` gets the
    /// current value (or `None`) and returns the new one, which is stored and returned. If the
    /// save meets a concurrent change, `f` is applied again to the freshest stored value, so
    /// 64 concurrent increments of a counter add 64.
    ///
    /// ```
    /// # use express_session::Session;
    /// # fn f(session: Session) -> Result<(), express_session::SessionError> {
    /// let cart_items: u32 = session.update("cart_items", |n: Option<u32>| n.unwrap_or(0) + 1)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn update<T, F>(&self, key: &str, f: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        if codec::RESERVED_KEYS.contains(&key) {
            return Err(SessionError::ReservedKey(key.to_owned()));
        }
        let f: UpdateFn = Arc::new(move |old: Option<&Value>| {
            let old = old.and_then(|v| T::deserialize(v).ok());
            serde_json::to_value(f(old)).unwrap_or(Value::Null)
        });
        let mut g = self.lock();
        g.live()?;
        let new = f(g.data.get(key));
        let typed = T::deserialize(&new)?;
        // After a set or remove of this key, the outcome no longer depends on the stored value:
        // replay it as a set. Otherwise replay the function onto the freshest value.
        let follows_set = g
            .changes
            .iter()
            .any(|(k, c)| k == key && !matches!(c, Change::Update(_)));
        let change = if follows_set {
            Change::Set(new.clone())
        } else {
            Change::Update(vec![f])
        };
        put(Arc::make_mut(&mut g.data), key, new);
        g.record_change(key, change);
        Ok(typed)
    }

    /// The data keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().data.keys().cloned().collect()
    }

    /// A copy of all the data.
    pub fn data(&self) -> Data {
        (*self.lock().data).clone()
    }

    /// The number of data keys.
    pub fn len(&self) -> usize {
        self.lock().data.len()
    }

    /// True when the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.lock().data.is_empty()
    }

    /// This session's cookie attributes (express's `req.session.cookie`).
    pub fn cookie(&self) -> SessionCookie {
        self.lock().cookie.clone()
    }

    /// Changes this session's cookie, as assigning to `req.session.cookie.*` does in express:
    /// the change is stored with the session and applies to its later responses.
    ///
    /// ```
    /// # fn f(session: express_session::Session) {
    /// // "Remember me": keep this user's cookie for 30 days.
    /// session.update_cookie(|c| c.set_max_age(Some(time::Duration::days(30))));
    /// # }
    /// ```
    pub fn update_cookie(&self, f: impl FnOnce(&mut SessionCookie)) {
        f(&mut self.lock().cookie);
    }

    /// Resets the cookie's expiry to now plus its original lifetime (express's `touch()`); no
    /// store I/O.
    pub fn touch(&self) {
        self.lock().cookie.touch_at(OffsetDateTime::now_utc());
    }

    /// Express's `req.session = null`: the layer drops this request's changes and, with
    /// [`Unset::Destroy`](crate::Unset::Destroy), deletes the stored session.
    pub fn unset(&self) {
        let mut g = self.lock();
        if g.state == State::Live {
            g.state = State::Unset;
        }
    }

    /// Deletes the session from the store now. The response then clears the cookie; later data
    /// calls fail with [`SessionError::Destroyed`]. Concurrent requests that loaded this
    /// session cannot bring it back.
    ///
    /// # Errors
    /// [`SessionError::Store`] if the store fails.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let id = {
            let g = self.lock();
            let in_store = g.stored.is_some() || g.cookie_id.as_deref() == Some(g.id.as_str());
            in_store.then(|| g.id.clone())
        };
        if let Some(id) = id {
            self.shared.store.destroy(&id).await?;
            self.shared.decoded.forget(&id);
        }
        let mut g = self.lock();
        g.state = State::Destroyed;
        g.data = Arc::new(Data::new());
        g.changes.clear();
        g.stored = None;
        Ok(())
    }

    /// Replaces the session with a new one under a new id, and deletes the old one from the
    /// store: call it at login and at any change of privilege (session-fixation defence). As in
    /// express, the data is not carried over, and the cookie starts from the layer's options.
    ///
    /// # Errors
    /// [`SessionError::Store`] if the store fails to delete the old session.
    pub async fn regenerate(&self) -> Result<(), SessionError> {
        let old = {
            let g = self.lock();
            let in_store = g.stored.is_some() || g.cookie_id.as_deref() == Some(g.id.as_str());
            in_store.then(|| g.id.clone())
        };
        if let Some(old) = old {
            self.shared.store.destroy(&old).await?;
            self.shared.decoded.forget(&old);
        }
        let new_id = self.shared.genid();
        let mut g = self.lock();
        let fresh = Inner::fresh(&self.shared, new_id, g.secure_request);
        g.id = fresh.id;
        g.cookie = fresh.cookie;
        g.data = fresh.data;
        g.state = State::Live;
        g.stored = None;
        g.changes.clear();
        g.mutated = true;
        Ok(())
    }

    /// Re-reads the session from the store, dropping unsaved changes.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] if the store no longer holds it (express: "failed to load
    /// session"), [`SessionError::Store`] if the store fails.
    pub async fn reload(&self) -> Result<(), SessionError> {
        let id = {
            let g = self.lock();
            g.live()?;
            g.id.clone()
        };
        let record = self.shared.store.load(&id).await?.ok_or(SessionError::NotFound)?;
        let (cookie, data) = self
            .shared
            .decoded
            .decode(&id, &record.data, self.shared.config.max_record_size)
            .map_err(|e| {
                tracing::warn!(error = %e, "corrupt session record on reload");
                SessionError::NotFound
            })?;
        let mut g = self.lock();
        if g.id == id {
            g.cookie = cookie;
            g.data = data;
            g.store_expires = record.expires;
            g.stored = Some(record);
            g.changes.clear();
            g.mutated = true;
        }
        Ok(())
    }

    /// Saves the session now, instead of (or before) the end of the request. The end-of-request
    /// save is then skipped unless the data changes again.
    ///
    /// # Errors
    /// [`SessionError::Destroyed`] if the session was destroyed (here or by a concurrent
    /// request), [`SessionError::Store`] if the store fails, [`SessionError::Conflict`] when
    /// concurrent writers kept winning.
    pub async fn save(&self) -> Result<(), SessionError> {
        self.lock().live()?;
        self.persist().await
    }

    /// Writes the session: `create` for a new one, compare-and-set `update` otherwise, merging
    /// this request's changes onto the current record on a conflict.
    ///
    /// Updates of one session from this layer take turns ([`crate::turns`]): each builds on the
    /// record the one before wrote, and the turn holder writes the changes of the saves queued
    /// behind it in the same compare-and-set, so N concurrent writers of one session cost about
    /// one store write per turn instead of N conflicting ones.
    async fn persist(&self) -> Result<(), SessionError> {
        let config = &self.shared.config;
        let store = &self.shared.store;
        let mut attempts = 0u32;
        // This save's turn, taken before its first compare-and-set and kept through retries.
        let mut turn: Option<Turn<'_, Session>> = None;
        loop {
            let id = {
                let g = self.lock();
                g.live()?;
                g.stored.is_some().then(|| g.id.clone())
            };
            if let Some(id) = id {
                if turn.as_ref().map(Turn::id) != Some(id.as_str()) {
                    drop(turn.take()); // never hold two sessions' turns
                    let t = self.shared.turns.take(&id, self.clone()).await;
                    if t.saved_by_another() {
                        // The holder before wrote this request's changes with its own, and
                        // updated this session as after a save of its own.
                        return Ok(());
                    }
                    turn = Some(t);
                }
            }
            let (id, record, expected, data, cookie) = {
                let mut g = self.lock();
                g.live()?;
                // A save of this session from this process landed since this request loaded
                // it: build on what that save wrote, not on a record known to be replaced.
                let newer = match (&turn, &g.stored) {
                    (Some(t), Some(stored)) if t.id() == g.id => t.newer_than(stored),
                    _ => None,
                };
                if let Some((newer, theirs)) = newer {
                    let merged = apply(&g.changes, Data::clone(theirs));
                    g.data = Arc::new(merged);
                    g.mutated = true;
                    g.stored = Some(newer.clone());
                }
                // The cookie the record holds, for the decoded copy an update keeps.
                let cookie = g.stored.is_some().then(|| g.cookie.clone());
                (g.id.clone(), g.record(), g.stored.clone(), Arc::clone(&g.data), cookie)
            };
            if record.data.len() > config.max_record_size {
                return Err(SessionError::TooLarge {
                    size: record.data.len(),
                    limit: config.max_record_size,
                });
            }
            attempts += 1;
            let (Some(expected), Some(cookie)) = (expected, cookie) else {
                if store.create(&id, &record).await? {
                    self.saved_as(&id, record, data, false);
                    return Ok(());
                }
                // The id is taken: never overwrite someone else's session; take a new id.
                if attempts > 3 {
                    return Err(SessionError::IdCollision);
                }
                tracing::warn!("generated session id already in the store; generating another");
                let new_id = self.shared.genid();
                self.lock().id = new_id;
                continue;
            };
            // The saves queued behind this one go into the same write, in the order they came.
            let queued = match turn.as_mut() {
                Some(t) if t.id() == id => t.take_queued(),
                _ => Vec::new(),
            };
            let (record, data, cookie, batch) = self.fold_queued(&id, record, data, cookie, queued);
            let folded = !batch.is_empty();
            match store.update(&id, &record, &expected).await? {
                Update::Done => {
                    self.shared.decoded.keep(&id, &record.data, &cookie, &data);
                    if let Some(t) = turn.as_mut().filter(|t| t.id() == id) {
                        t.wrote(&expected, record.clone(), Arc::clone(&data));
                    }
                    for (other, ticket) in batch {
                        other.saved_as(&id, record.clone(), Arc::clone(&data), true);
                        ticket.done();
                    }
                    self.saved_as(&id, record, data, folded);
                    return Ok(());
                }
                // Not written: the queued saves (their tickets dropped) save themselves in turn.
                Update::Gone => {
                    tracing::warn!("session was destroyed by a concurrent request; its late save is dropped");
                    let mut g = self.lock();
                    if g.id == id {
                        g.state = State::Gone;
                        g.stored = None;
                    }
                    return Err(SessionError::Destroyed);
                }
                Update::Conflict(current) => {
                    drop(batch);
                    if attempts > config.max_save_retries {
                        return Err(SessionError::Conflict);
                    }
                    if attempts > 3 {
                        // Heavy contention: spread the writers out a little (jittered backoff).
                        use rand::Rng;
                        let cap = (u64::from(attempts) * 250).min(5_000);
                        let wait = rand::thread_rng().gen_range(0..=cap);
                        tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
                    }
                    let mut g = self.lock();
                    if g.id != id {
                        continue;
                    }
                    match self.shared.decoded.decode(&id, &current.data, config.max_record_size) {
                        Ok((_, theirs)) => {
                            let merged = apply(&g.changes, Arc::unwrap_or_clone(theirs));
                            g.data = Arc::new(merged);
                            g.mutated = true;
                        }
                        Err(e) => tracing::warn!(error = %e, "corrupt session record replaced on save"),
                    }
                    g.stored = Some(current);
                }
            }
        }
    }

    /// Folds the changes of the saves queued behind this one into this save's `record`: each
    /// one's changes replayed in turn onto `data`, and the cookie of the last. Returns the
    /// record to write, its data, and the saves it includes. A queued save that is no longer a
    /// live save of `id` is left out (its ticket dropped: it saves itself), and so are all of
    /// them if together they make the record too large.
    fn fold_queued(
        &self,
        id: &str,
        record: Record,
        data: Arc<Data>,
        cookie: SessionCookie,
        queued: Vec<(Session, Ticket)>,
    ) -> (Record, Arc<Data>, SessionCookie, Vec<(Session, Ticket)>) {
        if queued.is_empty() {
            return (record, data, cookie, queued);
        }
        let mut merged = Data::clone(&data);
        let mut last_cookie = None;
        let mut batch = Vec::with_capacity(queued.len());
        for (other, ticket) in queued {
            let g = other.lock();
            if g.state != State::Live || g.id != id || g.stored.is_none() {
                continue;
            }
            merged = apply(&g.changes, merged);
            last_cookie = Some(g.cookie.clone());
            drop(g);
            batch.push((other, ticket));
        }
        let Some(last_cookie) = last_cookie else {
            return (record, data, cookie, batch);
        };
        let folded = Record::new(codec::encode(&last_cookie, &merged), last_cookie.expires);
        if folded.data.len() > self.shared.config.max_record_size {
            // Too large together: each saves on its own, and only the one that overflows fails.
            return (record, data, cookie, Vec::new());
        }
        (folded, Arc::new(merged), last_cookie, batch)
    }

    /// Updates this session as after a successful save of `record` (with `data`) as `id`. With
    /// `adopt`, the session's data becomes `data`: the write carried other requests' changes too.
    fn saved_as(&self, id: &str, record: Record, data: Arc<Data>, adopt: bool) {
        let mut g = self.lock();
        if g.id == id {
            if adopt {
                g.data = Arc::clone(&data);
                g.mutated = true;
            }
            g.store_expires = record.expires;
            g.stored = Some(record);
            g.saved = Some(data);
            g.changes.clear();
        }
    }

    /// The end of the request: express-session's decision rules for saving, touching and the
    /// cookie. Returns the `Set-Cookie` value to send, if any.
    pub(crate) async fn finish(&self) -> Result<Option<String>, SessionError> {
        let config = &self.shared.config;
        enum Plan {
            Done(Option<String>),
            Destroy(String),
            Save {
                set_cookie: bool,
                should_save: bool,
                touch: Option<(String, Option<OffsetDateTime>)>,
            },
        }
        let plan = {
            let mut g = self.lock_raw();
            if g.pending {
                if !config.save_uninitialized {
                    // Untouched and new: unmodified, so neither saved nor given a cookie.
                    return Ok(None);
                }
                g.start(&self.shared);
            }
            let now = OffsetDateTime::now_utc();
            match g.state {
                State::Live => {
                    g.cookie.touch_at(now);
                    let modified = g.is_modified();
                    let from_cookie = g.cookie_id.as_deref() == Some(g.id.as_str());
                    let set_cookie = if from_cookie {
                        config.rolling || (g.cookie.expires.is_some() && modified)
                    } else {
                        config.save_uninitialized || modified
                    };
                    let should_save = if !config.save_uninitialized && g.saved.is_none() && !from_cookie {
                        modified
                    } else {
                        !g.is_saved()
                    };
                    let touch = from_cookie && !should_save && self.needs_touch(&g, now);
                    Plan::Save {
                        set_cookie,
                        should_save,
                        touch: touch.then(|| (g.id.clone(), g.cookie.expires)),
                    }
                }
                State::Unset => {
                    let destroy = config.unset == crate::Unset::Destroy
                        && (g.stored.is_some() || g.cookie_id.as_deref() == Some(g.id.as_str()));
                    if destroy {
                        Plan::Destroy(g.id.clone())
                    } else {
                        Plan::Done(None)
                    }
                }
                State::Destroyed => {
                    let clear = g.cookie_id.is_some() && g.cookie_allowed();
                    Plan::Done(clear.then(|| g.cookie.clear_cookie(&config.name)))
                }
                State::Gone => Plan::Done(None),
            }
        };
        let (set_cookie, should_save, touch) = match plan {
            Plan::Done(header) => return Ok(header),
            Plan::Destroy(id) => {
                self.shared.store.destroy(&id).await?;
                self.shared.decoded.forget(&id);
                return Ok(None);
            }
            Plan::Save {
                set_cookie,
                should_save,
                touch,
            } => (set_cookie, should_save, touch),
        };
        if should_save {
            // Boxed: the save's state is large, and inline it would make every request's
            // future (reads too) big enough for the allocator's slow path.
            match Box::pin(self.persist()).await {
                Ok(()) => {}
                Err(SessionError::Destroyed) => return Ok(None),
                Err(e) => return Err(e),
            }
        } else if let Some((id, expires)) = touch {
            self.shared.store.touch(&id, expires).await?;
        }
        let g = self.lock();
        if !set_cookie || !g.cookie_allowed() {
            return Ok(None);
        }
        let value = self.shared.keys.cookie_value(&g.id);
        Ok(Some(g.cookie.set_cookie(&config.name, &value)))
    }

    /// Whether an unmodified loaded session needs a store touch now.
    fn needs_touch(&self, g: &Inner, now: OffsetDateTime) -> bool {
        let config = &self.shared.config;
        if let Some(after) = config.touch_after {
            // The record was last touched when it was given its current expiry. Stores that
            // keep whole seconds round that expiry up (PostgreSQL, MySQL), which can put the
            // inferred touch up to a second in the future: no time has passed then, not less.
            let lifetime = g.cookie.original_max_age().unwrap_or(crate::store::DEFAULT_TTL);
            return match g.store_expires {
                Some(expires) => (now - (expires - lifetime)).max(time::Duration::ZERO) >= after,
                None => true,
            };
        }
        match g.touched_on_load {
            // Already touched on load with this lifetime (to the second, the TTL's unit).
            Some(ms) => ceil_secs(ms) != ceil_secs(g.cookie.original_max_age),
            None => true,
        }
    }
}

fn ceil_secs(ms: Option<i64>) -> Option<i64> {
    ms.map(|ms| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_replays_sets_removes_and_updates() {
        let inc: UpdateFn = Arc::new(|v: Option<&Value>| Value::from(v.and_then(Value::as_i64).unwrap_or(0) + 1));
        let changes = vec![
            ("a".to_owned(), Change::Set(1.into())),
            ("b".to_owned(), Change::Remove),
            ("n".to_owned(), Change::Update(vec![inc.clone(), inc])),
        ];
        let merged = apply(&changes, data(r#"{"b":2,"c":3,"n":40}"#));
        assert!(same_data(&merged, &data(r#"{"c":3,"n":42,"a":1}"#)), "{merged:?}");
    }

    #[test]
    fn ids_are_unique_and_url_safe() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| generate_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(ceil_secs(Some(86_399_999)), Some(86_400));
        assert_eq!(ceil_secs(Some(86_400_000)), Some(86_400));
        assert_eq!(ceil_secs(None), None);
    }
}
