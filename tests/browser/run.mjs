// End-to-end tests of the example apps in a real headless Chromium: what a person's browser
// does with the session cookie (keeps it, hides it from scripts, drops it when it expires or
// when it is Secure on plain http), checked against examples/app.rs and examples/login.rs.
//
// `cargo test --test browser` runs this file with the prebuilt example binaries. By hand:
//   cargo build --examples && (cd tests/browser && npm ci) && node tests/browser/run.mjs
// Environment: EXAMPLE_APP_BIN / EXAMPLE_LOGIN_BIN (default: the debug examples under
// $CARGO_TARGET_DIR or ./target), CHROMIUM_PATH (default /usr/bin/chromium; never downloaded),
// UPDATE_SCREENSHOT=1 to also copy the logged-in screenshot to docs/screenshot-login.png.
//
// Each app runs as its own process on a free loopback port (PORT=0; the app prints its address).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
const APP_BIN = process.env.EXAMPLE_APP_BIN || path.join(targetDir, 'debug', 'examples', 'app');
const LOGIN_BIN = process.env.EXAMPLE_LOGIN_BIN || path.join(targetDir, 'debug', 'examples', 'login');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUTPUT = path.join(here, 'output');
const COOKIE = 'connect.sid';
const TEST_TIMEOUT_MS = 30_000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

// ---------------------------------------------------------------------------------------------
// The apps under test.

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
// A hung browser or app must not hang the run: give up (and stop the apps) after 110 s.
setTimeout(() => {
  console.error('browser suite: gave up after 110 s');
  process.exit(1);
}, 110_000).unref();

/** Starts an example binary on a free port; resolves to its base URL once it listens. */
function startApp(bin, env = {}) {
  if (!existsSync(bin)) {
    throw new Error(`example binary ${bin} is missing: run \`cargo build --examples\` first`);
  }
  const name = path.basename(bin);
  const child = spawn(bin, [], {
    env: { ...process.env, RUST_LOG: 'warn', ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not print its address within 20 s`));
    }, 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (seen === null) {
        process.stderr.write(`[${name}] ${chunk}`);
        return;
      }
      seen += chunk;
      const m = seen.match(/http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        seen = null;
        clearTimeout(timer);
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          stop: () => child.kill('SIGTERM'),
        });
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The browser: one Chromium, a fresh context (cookie jar) per test or per simulated person.

let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
});

after(async () => {
  await browser?.close();
});

/** A fresh browser context (its own cookie jar), with short timeouts. */
async function newContext() {
  const context = await browser.newContext({ viewport: { width: 640, height: 460 } });
  context.setDefaultTimeout(10_000);
  return context;
}

/** The session cookie the browser holds for `url`, or undefined. */
async function sessionCookie(context, url) {
  return (await context.cookies(url)).find((c) => c.name === COOKIE);
}

/** The trimmed visible text of `selector`. */
async function text(page, selector) {
  return (await page.locator(selector).innerText()).trim();
}

/** Submits the login form on the current page, as a person would. */
async function submitLogin(page, username, password) {
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** Opens the login app's home page in `context` and logs in as the demo user. */
async function logIn(context, url) {
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await submitLogin(page, 'demo', 'demo-password');
  assert.equal(await text(page, '#status'), 'Logged in as demo.');
  return page;
}

/** Asserts the page is the login app's logged-out page. */
async function assertLoggedOut(page) {
  assert.equal(await text(page, '#status'), 'You are not logged in.');
  assert.equal(await page.locator('#user').count(), 0, 'no user is shown');
}

/** Every Set-Cookie value for the session cookie that `page` receives from now on. */
function recordSessionSetCookies(page) {
  const seen = [];
  const pending = [];
  page.on('response', (response) => {
    pending.push(
      response.headerValues('set-cookie').then((values) => {
        for (const v of values) if (v.startsWith(`${COOKIE}=`)) seen.push(v);
      }),
    );
  });
  return async () => {
    await Promise.all(pending);
    return seen;
  };
}

/** Polls `probe` until it returns true or `ms` pass; returns its last answer. */
async function eventually(probe, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------------------------

describe('reference app (examples/app.rs)', () => {
  let app;
  before(async () => {
    app = await startApp(APP_BIN);
  });
  after(() => app?.stop());

  test('the index sets the session and its link reads it back', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${app.url}/`);
      assert.equal(
        await text(page, 'body'),
        'Hey Geek! Session is set! Now Go to /get to retrieve the session.',
      );
      await Promise.all([page.waitForURL(`${app.url}/get`), page.click('a[href="/get"]')]);
      assert.equal(await text(page, 'body'), 'Session variable: geeksforgeeks');
    } finally {
      await context.close();
    }
  });

  test('a fresh browser context has no session', { timeout: TEST_TIMEOUT_MS }, async () => {
    const first = await newContext();
    const fresh = await newContext();
    try {
      const page = await first.newPage();
      await page.goto(`${app.url}/`);
      await page.goto(`${app.url}/get`);
      assert.equal(await text(page, 'body'), 'Session variable: geeksforgeeks');

      assert.deepEqual(await fresh.cookies(app.url), [], 'a new context starts with no cookies');
      const other = await fresh.newPage();
      await other.goto(`${app.url}/get`);
      assert.equal(await text(other, 'body'), 'Session variable: No session set');
    } finally {
      await first.close();
      await fresh.close();
    }
  });
});

describe('login example, default options (examples/login.rs)', () => {
  let app;
  before(async () => {
    app = await startApp(LOGIN_BIN);
  });
  after(() => app?.stop());

  test('a wrong password shows an error, keeps the visitor logged out and escapes the echoed name', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${app.url}/`);
      await assertLoggedOut(page);
      const hostile = '"><b id="injected">x</b> & \'';
      await submitLogin(page, hostile, 'not-the-password');
      assert.equal(await text(page, '#error'), 'Wrong user name or password.');
      await assertLoggedOut(page);
      assert.equal(await page.inputValue('#username'), hostile, 'the name comes back as typed');
      assert.equal(await page.locator('#injected').count(), 0, 'the name was not parsed as HTML');

      await submitLogin(page, 'demo', 'wrong');
      assert.equal(await text(page, '#error'), 'Wrong user name or password.');
      await assertLoggedOut(page);
    } finally {
      await context.close();
    }
  });

  test('login changes the session id and the pre-login id stops working', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    const replay = await newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${app.url}/`);
      const before = await sessionCookie(context, app.url);
      assert.ok(before, 'the login form starts a session (it holds the form token)');

      await submitLogin(page, 'demo', 'demo-password');
      assert.equal(await text(page, '#status'), 'Logged in as demo.');
      const after = await sessionCookie(context, app.url);
      assert.ok(after, 'logged in with a session cookie');
      assert.ok(after.value !== before.value, 'login must issue a new session id (regenerate)');

      // Someone holding the pre-login cookie (say, one they planted) is not logged in.
      await replay.addCookies([before]);
      const other = await replay.newPage();
      await other.goto(`${app.url}/`);
      await assertLoggedOut(other);
    } finally {
      await context.close();
      await replay.close();
    }
  });

  test('the session cookie is HttpOnly, SameSite=Lax and lives max_age', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await logIn(context, app.url);
      const cookie = await sessionCookie(context, app.url);
      assert.ok(cookie, 'the browser holds the session cookie');
      const visible = await page.evaluate(() => document.cookie);
      assert.ok(!visible.includes(`${COOKIE}=`), 'page scripts must not see the session cookie');

      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Lax');
      assert.equal(cookie.secure, false);
      const lifetime = cookie.expires - Date.now() / 1000;
      assert.ok(lifetime > 3500 && lifetime <= 3600, `expires in about 3600 s, not ${lifetime}`);
    } finally {
      await context.close();
    }
  });

  test('the visit counter survives reloads', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await logIn(context, app.url);
      assert.equal(await text(page, '#visits'), '1');
      await page.reload();
      assert.equal(await text(page, '#visits'), '2');
      await page.reload();
      assert.equal(await text(page, '#visits'), '3');
      assert.equal(await text(page, '#status'), 'Logged in as demo.');
    } finally {
      await context.close();
    }
  });

  test('logout shows the logged-out page and the old cookie no longer works', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    const replay = await newContext();
    try {
      const page = await logIn(context, app.url);
      const loggedIn = await sessionCookie(context, app.url);
      assert.ok(loggedIn);

      await Promise.all([page.waitForNavigation(), page.click('text=Log out')]);
      await assertLoggedOut(page);
      const now = await sessionCookie(context, app.url);
      assert.ok(now?.value !== loggedIn.value, 'the logged-in cookie is gone from the browser');

      // A copy of the cookie taken before logout (another tab, a thief) is worthless now.
      await replay.addCookies([loggedIn]);
      const other = await replay.newPage();
      await other.goto(`${app.url}/`);
      await assertLoggedOut(other);
    } finally {
      await context.close();
      await replay.close();
    }
  });

  test('the logged-in page renders (screenshot)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await logIn(context, app.url);
      await page.reload();
      assert.equal(await text(page, '#visits'), '2');
      await page.setViewportSize({ width: 640, height: 320 });
      await mkdir(OUTPUT, { recursive: true });
      const file = path.join(OUTPUT, 'login.png');
      await page.screenshot({ path: file });
      const png = await readFile(file);
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG was written');
      if (process.env.UPDATE_SCREENSHOT === '1') {
        await copyFile(file, path.join(repo, 'docs', 'screenshot-login.png'));
      }
    } finally {
      await context.close();
    }
  });
});

describe('login example, SESSION_SECURE=true over http', () => {
  let app;
  before(async () => {
    app = await startApp(LOGIN_BIN, { SESSION_SECURE: 'true' });
  });
  after(() => app?.stop());

  test('a Secure cookie is never sent or kept on an http origin', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const setCookies = recordSessionSetCookies(page);
      await page.goto(`${app.url}/`);
      await assertLoggedOut(page);
      assert.equal(await sessionCookie(context, app.url), undefined, 'no cookie after the login form');

      // The form token lives in a session the browser never got, so login cannot stick.
      await submitLogin(page, 'demo', 'demo-password');
      await assertLoggedOut(page);
      assert.equal(await sessionCookie(context, app.url), undefined, 'no cookie after logging in');
      assert.deepEqual(await setCookies(), [], 'express semantics: no Set-Cookie over http at all');
    } finally {
      await context.close();
    }
  });
});

describe('login example, SESSION_SECURE=auto over http', () => {
  let app;
  before(async () => {
    app = await startApp(LOGIN_BIN, { SESSION_SECURE: 'auto' });
  });
  after(() => app?.stop());

  test('secure auto keeps the cookie on http, without the Secure attribute', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const setCookies = recordSessionSetCookies(page);
      await page.goto(`${app.url}/`);
      await submitLogin(page, 'demo', 'demo-password');
      assert.equal(await text(page, '#status'), 'Logged in as demo.');
      const cookie = await sessionCookie(context, app.url);
      assert.ok(cookie, 'the browser kept the session cookie');
      assert.equal(cookie.secure, false);
      const sent = await setCookies();
      assert.ok(sent.length > 0, 'the server sent the cookie');
      for (const header of sent) assert.doesNotMatch(header, /;\s*secure/i);
    } finally {
      await context.close();
    }
  });
});

describe('login example, SESSION_MAX_AGE_SECS=2', () => {
  let app;
  before(async () => {
    app = await startApp(LOGIN_BIN, { SESSION_MAX_AGE_SECS: '2' });
  });
  after(() => app?.stop());

  test('a short max_age cookie is gone once it expires', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const setCookies = recordSessionSetCookies(page);
      await page.goto(`${app.url}/`);
      await submitLogin(page, 'demo', 'demo-password');
      // Logged in after the redirect: the browser held the cookie and sent it back.
      assert.equal(await text(page, '#status'), 'Logged in as demo.');
      const sent = await setCookies();
      assert.ok(sent.length > 0 && sent.every((h) => /;\s*Expires=/i.test(h)), 'persistent cookies were sent');
      // On a slow machine the cookie may already be gone; if not, it must expire within 2 s.
      const cookie = await sessionCookie(context, app.url);
      if (cookie) {
        const lifetime = cookie.expires - Date.now() / 1000;
        assert.ok(cookie.expires > 0 && lifetime <= 2, `a cookie expiring within 2 s, not ${lifetime}`);
      }

      const gone = await eventually(async () => (await sessionCookie(context, app.url)) === undefined, 10_000);
      assert.ok(gone, 'the browser dropped the expired cookie within 10 s');
      await page.reload();
      await assertLoggedOut(page);
    } finally {
      await context.close();
    }
  });
});
