//! Every option of the session layer, with its default, in one place.

use std::{fmt, sync::Arc};

use time::{Duration, OffsetDateTime};

use crate::error::ConfigError;

/// The default cookie name, as in express-session.
pub const DEFAULT_NAME: &str = "connect.sid";
/// The default longest serialized record accepted on load and save: 1 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1024 * 1024;
/// The longest cookie value read from a request; longer values are ignored unread.
pub const MAX_COOKIE_VALUE_LEN: usize = 4096;
/// How many times a save that conflicts with concurrent writers is merged and retried.
pub const DEFAULT_MAX_SAVE_RETRIES: u32 = 100;
/// The data key under which [`SessionLayer::absolute_timeout`](crate::SessionLayer::absolute_timeout)
/// keeps when a session began: milliseconds since the Unix epoch, a JSON number (what
/// JavaScript's `Date.now()` gives), so a Node app sharing the store keeps it as ordinary data.
pub const CREATED_AT_KEY: &str = "__createdAt";

/// What happens to the stored session when a handler calls [`Session::unset`](crate::Session::unset),
/// the Rust form of express's `req.session = null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unset {
    /// Keep the stored session; this request's changes are dropped (the default).
    #[default]
    Keep,
    /// Delete the stored session at the end of the request.
    Destroy,
}

/// The cookie's `Secure` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Secure {
    /// Always mark the cookie `Secure`. Over plain HTTP no `Set-Cookie` is sent at all, as in
    /// express-session (the session is still saved).
    Always,
    /// Never mark it `Secure` (stored as `secure: false`).
    Never,
    /// Decide when the session is created, from whether that request is secure (see
    /// [`SessionLayer::proxy`](crate::SessionLayer::proxy)); the decision stays with the session.
    Auto,
}

/// The cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (needs `Secure`).
    None,
    /// `None` for a session created over a secure request, `Lax` otherwise (config only; resolved
    /// when the session is created).
    Auto,
}

impl SameSite {
    pub(crate) fn as_attr(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None | Self::Auto => "None",
        }
    }

    pub(crate) fn as_json(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Lax => "lax",
            Self::None => "none",
            Self::Auto => "auto",
        }
    }
}

/// The cookie's `Priority` attribute (a Chromium extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// `Priority=Low`.
    Low,
    /// `Priority=Medium`.
    Medium,
    /// `Priority=High`.
    High,
}

impl Priority {
    pub(crate) fn as_attr(self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
        }
    }

    pub(crate) fn as_json(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A session id generator, express-session's `genid`.
pub(crate) type GenId = Arc<dyn Fn() -> String + Send + Sync>;

/// The cookie options of new sessions (express-session's `cookie` object).
#[derive(Clone, Debug)]
pub(crate) struct CookieConfig {
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) http_only: bool,
    pub(crate) secure: Option<Secure>,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) expires: Option<OffsetDateTime>,
    pub(crate) partitioned: Option<bool>,
    pub(crate) priority: Option<Priority>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            domain: None,
            http_only: true,
            secure: None,
            same_site: Some(SameSite::Lax),
            max_age: None,
            expires: None,
            partitioned: None,
            priority: None,
        }
    }
}

/// The whole configuration of a layer.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) secrets: Vec<Vec<u8>>,
    pub(crate) resave: bool,
    pub(crate) save_uninitialized: bool,
    pub(crate) rolling: bool,
    pub(crate) unset: Unset,
    pub(crate) proxy: Option<bool>,
    pub(crate) genid: Option<GenId>,
    pub(crate) cookie: CookieConfig,
    pub(crate) touch_after: Option<Duration>,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) max_record_size: usize,
    pub(crate) max_save_retries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            secrets: Vec::new(),
            resave: false,
            save_uninitialized: false,
            rolling: false,
            unset: Unset::Keep,
            proxy: None,
            genid: None,
            cookie: CookieConfig::default(),
            touch_after: None,
            absolute_timeout: None,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            max_save_retries: DEFAULT_MAX_SAVE_RETRIES,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("resave", &self.resave)
            .field("save_uninitialized", &self.save_uninitialized)
            .field("rolling", &self.rolling)
            .field("unset", &self.unset)
            .field("proxy", &self.proxy)
            .field("genid", &self.genid.as_ref().map(|_| "custom"))
            .field("cookie", &self.cookie)
            .field("touch_after", &self.touch_after)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("max_record_size", &self.max_record_size)
            .finish()
    }
}

fn is_token_char(b: u8) -> bool {
    // RFC 7230 tchar, which is what a cookie name may be.
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn valid_attr(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// The domain syntax the `cookie` package accepts (and so express-session): dot-separated
/// labels of 1–63 ASCII letters, digits and inner hyphens, with an optional leading dot.
/// Browsers drop a cookie whose `Domain` they cannot parse, so anything else is a config error.
fn valid_domain(domain: &str) -> bool {
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.split('.').all(|label| {
            let b = label.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

impl Config {
    /// Checks every option that could put a broken or injectable cookie on the wire.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::MissingSecret);
        }
        if let Some(i) = self.secrets.iter().position(Vec::is_empty) {
            return Err(ConfigError::EmptySecret(i));
        }
        if self.name.is_empty() || !self.name.bytes().all(is_token_char) {
            return Err(ConfigError::InvalidName(self.name.clone()));
        }
        let c = &self.cookie;
        if c.path.is_empty() || !valid_attr(&c.path) {
            return Err(ConfigError::InvalidAttribute {
                attribute: "path",
                value: c.path.clone(),
            });
        }
        if let Some(domain) = &c.domain {
            if !valid_domain(domain) {
                return Err(ConfigError::InvalidAttribute {
                    attribute: "domain",
                    value: domain.clone(),
                });
            }
        }
        let may_be_secure = matches!(c.secure, Some(Secure::Always | Secure::Auto));
        // `Auto` resolves to `None` over HTTPS, so it needs a Secure that can be set as well.
        if matches!(c.same_site, Some(SameSite::None | SameSite::Auto)) && !may_be_secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if self.name.starts_with("__Host-") && (c.secure != Some(Secure::Always) || c.domain.is_some() || c.path != "/")
        {
            return Err(ConfigError::HostPrefix);
        }
        if self.name.starts_with("__Secure-") && c.secure != Some(Secure::Always) {
            return Err(ConfigError::SecurePrefix);
        }
        if let Some(t) = self.absolute_timeout.filter(|t| !t.is_positive()) {
            return Err(ConfigError::InvalidTimeout(t));
        }
        Ok(())
    }
}
