//! Run with: cargo run --example login
//!
//! A login page kept in a session: one demo account (`demo` / `demo-password`), a visit
//! counter, and logout. Open <http://127.0.0.1:3001/>.
//!
//! What it shows:
//! - `POST /login` calls [`Session::regenerate`] before it stores the user, so a session id that
//!   existed before the login (the login form's own, or one an attacker planted) is worthless
//!   after it;
//! - `GET /` counts visits with [`Session::update`], which loses no increment to concurrent
//!   requests;
//! - `POST /logout` calls [`Session::destroy`]: the record is deleted and the cookie cleared,
//!   so a copy of the old cookie no longer logs anyone in;
//! - both forms carry a per-session anti-forgery token (on top of the `SameSite=Lax` cookie);
//! - every value written into the HTML is escaped.
//!
//! Environment:
//! - `PORT`: the port on 127.0.0.1 (default 3001; `0` picks a free one, printed at start);
//! - `SESSION_MAX_AGE_SECS`: the cookie's and the session's lifetime (default 3600);
//! - `SESSION_SECURE`: the cookie's `Secure`: `true`, `false` or `auto` (default `false`). With
//!   `true` over plain HTTP the cookie is never sent, as in express-session, so login cannot
//!   stick: serve over HTTPS for that;
//! - `SESSION_SECRET`: the signing secret (default: a demo value; use 32+ random bytes).

use std::{error::Error, fmt::Write as _};

use axum::{
    extract::Form,
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use express_session::{time::Duration, MemoryStore, Secure, Session, SessionError, SessionLayer};
use serde::Deserialize;

/// The one account of this demo. A real app checks a password hash from its user store.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password";

/// Session keys.
const USER: &str = "user";
const VISITS: &str = "visits";
const CSRF: &str = "csrf";

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// This session's anti-forgery token, made on first use.
fn csrf_token(session: &Session) -> Result<String, SessionError> {
    if let Some(token) = session.get::<String>(CSRF) {
        return Ok(token);
    }
    let token = express_session::generate_id();
    session.insert(CSRF, &token)?;
    Ok(token)
}

/// True when the form's token is this session's.
fn csrf_ok(session: &Session, submitted: &str) -> bool {
    session
        .get::<String>(CSRF)
        .is_some_and(|token| same_secret(&token, submitted))
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login demo · express-session for Rust</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }}
  main {{ max-width: 26rem; margin: 3rem auto; background: #fff; padding: 1.5rem 2rem;
         border-radius: 8px; box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }}
  h1 {{ font-size: 1.25rem; margin-top: 0; }}
  label {{ display: block; margin: .75rem 0 .25rem; }}
  input {{ width: 100%; box-sizing: border-box; padding: .4rem; font: inherit; }}
  button {{ margin-top: 1rem; padding: .45rem 1.2rem; font: inherit; }}
  .error {{ color: #b00020; }}
  .hint {{ color: #5a6270; font-size: .9rem; }}
</style>
</head>
<body>
<main>
<h1>Login demo</h1>
{body}
</main>
</body>
</html>
"#
    ))
}

fn login_page(csrf: &str, username: &str, error: Option<&str>) -> Html<String> {
    let mut body = String::from("<p id=\"status\">You are not logged in.</p>\n");
    if let Some(error) = error {
        let _ = writeln!(
            body,
            "<p id=\"error\" class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    let _ = write!(
        body,
        r#"<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<label for="username">User name</label>
<input id="username" name="username" value="{username}" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
<p class="hint">Demo account: <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code></p>"#,
        csrf = escape(csrf),
        username = escape(username),
    );
    page(&body)
}

async fn home(session: Session) -> Result<Html<String>, SessionError> {
    let csrf = csrf_token(&session)?;
    let Some(user) = session.get::<String>(USER) else {
        return Ok(login_page(&csrf, "", None));
    };
    let visits: u64 = session.update(VISITS, |n: Option<u64>| n.unwrap_or(0) + 1)?;
    Ok(page(&format!(
        r#"<p id="status">Logged in as <strong id="user">{user}</strong>.</p>
<p>Visits in this session: <strong id="visits">{visits}</strong></p>
<form method="post" action="/logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Log out</button>
</form>"#,
        user = escape(&user),
        csrf = escape(&csrf),
    )))
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, SessionError> {
    if !csrf_ok(&session, &form.csrf) {
        let csrf = csrf_token(&session)?;
        let page = login_page(&csrf, &form.username, Some("The form has expired. Please try again."));
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    // Check both fields whatever the first one says, so timing does not tell which was wrong.
    let user_ok = same_secret(&form.username, DEMO_USER);
    let password_ok = same_secret(&form.password, DEMO_PASSWORD);
    if !(user_ok && password_ok) {
        let csrf = csrf_token(&session)?;
        return Ok(login_page(&csrf, &form.username, Some("Wrong user name or password.")).into_response());
    }
    // A new id for the new privilege: the pre-login session (and its id) is deleted.
    session.regenerate().await?;
    session.insert(USER, DEMO_USER)?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session, Form(form): Form<LogoutForm>) -> Result<Response, SessionError> {
    if !csrf_ok(&session, &form.csrf) {
        return Ok((
            StatusCode::FORBIDDEN,
            "The form has expired. Go back, reload and try again.",
        )
            .into_response());
    }
    session.destroy().await?;
    Ok(Redirect::to("/").into_response())
}

/// The app's router, over any session layer.
fn app(sessions: SessionLayer) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(sessions)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let max_age: i64 = env_or("SESSION_MAX_AGE_SECS", "3600")
        .parse()
        .ok()
        .filter(|&secs| secs > 0)
        .ok_or("SESSION_MAX_AGE_SECS must be a positive number of seconds")?;
    let secure = match env_or("SESSION_SECURE", "false").as_str() {
        "true" => Secure::Always,
        "false" => Secure::Never,
        "auto" => Secure::Auto,
        _ => return Err("SESSION_SECURE must be true, false or auto".into()),
    };
    let sessions = SessionLayer::new(MemoryStore::new())
        .secret(env_or(
            "SESSION_SECRET",
            "login-demo secret: replace with 32+ random bytes",
        ))
        .max_age(Duration::seconds(max_age))
        .secure(secure)
        .build()?;
    let port = env_or("PORT", "3001");
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("Server is running on http://{}", listener.local_addr()?);
    axum::serve(listener, app(sessions)).await?;
    Ok(())
}
