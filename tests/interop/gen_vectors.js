#!/usr/bin/env node
// Writes tests/fixtures/cookie_vectors.json from the real `cookie-signature`
// and `cookie` packages that express-session itself loads (the copies that
// npm dedupes into node_modules/ next to express-session; this script checks
// that they are the same module instances).
//
// Usage:  cd tests/interop && npm ci && node gen_vectors.js [output-path]
//
// Output is deterministic: every id, secret and option set comes from fixed
// lists or from a counter-based SHA-256 stream, and expiry dates are fixed, so
// running the script twice produces byte-identical JSON.
//
// JSON schema (version 1)
// -----------------------
// {
//   "version": 1,
//   "generated_by": "tests/interop/gen_vectors.js",
//   "packages": { "<name>": "<exact version>", ... },
//   "golden": {                       // the vector from the reference notes
//     "id", "secret", "hmac_sha256_hex", "signed", "cookie_value",
//     "other_secret"                  // unsign(signed, other_secret) is false
//   },
//   "sign": [ {                       // what express-session's setcookie emits
//     "id":           string,         // session id (uid-safe style or custom)
//     "secret":       string,         // the signing secret (secrets[0])
//     "name":         string,         // cookie name
//     "signature":    string,         // 43-char unpadded standard base64 HMAC
//     "signed":       string,         // "s:" + id + "." + signature
//     "cookie_value": string,         // encodeURIComponent(signed)
//     "options": {                    // exactly the object cookie.serialize got
//       "path": string, "httpOnly": bool,          // always present
//       "expires": ISO-8601 string | null,         // always present; null
//                                     // means no Expires (a browser-session
//                                     // cookie); otherwise rebuild the Date
//       "domain"?: string,
//       "secure"?: bool, "partitioned"?: bool,
//       "priority"?: string,          // any case: "low", "Medium", "HIGH"
//       "sameSite"?: true | false | string   // "lax", "Strict", "none", ...
//     },                              // absent key = undefined in JS
//     "set_cookie":   string          // cookie.serialize(name, signed, options)
//   }, ... ],
//   "verify": [ {                     // what express-session reads back
//     "case":         string,         // short label, e.g. "tampered-signature"
//     "name":         string,         // cookie name the middleware looks for
//     "cookie_header": string,        // the full Cookie request header
//     "cookie_value": string | null,  // value of the first `name` pair in
//                                     // the header, trimmed and unquoted as
//                                     // cookie.parse does, not yet percent-
//                                     // decoded; null if the name is absent
//     "secrets":      [string, ...],  // the middleware's secret list, in order
//     "expect_id":    string | null   // id express-session adopts; null means
//                                     // "no usable id: generate a new session"
//   }, ... ]
// }
//
// `verify` holds negative vectors (tampered, truncated, trailing bytes, wrong
// secret, missing "s:" prefix, ...) and positive ones (secret rotation,
// header-parsing quirks). expect_id is computed with the real packages through
// the same steps as express-session's getcookie() and is also checked against
// the expectation written next to each case, so a surprise aborts the script.
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const path = require('path')

const cookie = require('cookie')
const signature = require('cookie-signature')
const Cookie = require('express-session/session/cookie')

// --- make sure we use the very modules express-session uses -----------------

function resolveFrom (dir, id) {
  return require.resolve(id, { paths: [dir] })
}
const sessionDir = path.dirname(require.resolve('express-session/package.json'))
for (const dep of ['cookie', 'cookie-signature']) {
  const theirs = resolveFrom(sessionDir, dep)
  const ours = require.resolve(dep)
  if (theirs !== ours) {
    throw new Error(`${dep}: express-session loads ${theirs}, generator loads ${ours}`)
  }
}

function pkgVersion (name) {
  return require(`${name}/package.json`).version
}

// --- deterministic randomness ---------------------------------------------

// A byte stream from SHA-256(seed || counter). Not for security, only so the
// fixture is reproducible.
function byteStream (seed) {
  let counter = 0
  let pool = Buffer.alloc(0)
  return function take (n) {
    while (pool.length < n) {
      const block = crypto.createHash('sha256').update(`${seed}:${counter++}`).digest()
      pool = Buffer.concat([pool, block])
    }
    const out = pool.subarray(0, n)
    pool = pool.subarray(n)
    return Buffer.from(out)
  }
}
const rand = byteStream('express-session-rs cookie vectors v1')
function randInt (n) {
  return rand(4).readUInt32BE(0) % n
}
function pick (list) {
  return list[randInt(list.length)]
}

// uid-safe(24): 24 bytes, base64, '=' stripped, '+' -> '-', '/' -> '_'.
function uidSafeStyle () {
  return rand(24).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
}

// --- the express-session steps, using the real packages --------------------

// setcookie() in express-session/index.js
function setCookieHeader (name, id, secret, options) {
  const signed = 's:' + signature.sign(id, secret)
  return cookie.serialize(name, signed, options)
}

// getcookie() + unsigncookie() in express-session/index.js, header path only.
// Returns the id, or null where express-session ends up with no usable id
// (undefined or the empty string, both of which make it generate a session).
function readId (header, name, secrets) {
  const raw = cookie.parse(header)[name]
  if (!raw || raw.substr(0, 2) !== 's:') return null
  const val = raw.slice(2)
  for (const secret of secrets) {
    const result = signature.unsign(val, secret)
    if (result !== false) return result || null
  }
  return null
}

// The raw value of the first `name=` pair, as cookie.parse locates it but
// before any unquoting or decoding.
function firstRawValue (header, name) {
  const parsed = cookie.parse(header, { decode: (s) => s })
  return Object.prototype.hasOwnProperty.call(parsed, name) ? parsed[name] : null
}

// Express-session builds the serializer options from a Cookie object
// (req.session.cookie.data). Do the same so defaults and key handling match.
function cookieData (options) {
  const opts = Object.assign({}, options)
  if (opts.expires !== undefined) opts.expires = new Date(opts.expires)
  const c = new Cookie(opts)
  const data = c.data
  delete data.originalMaxAge // never read by cookie.serialize
  return data
}

// Same object for JSON: drop undefined, Dates as ISO strings.
function optionsForJson (data) {
  const out = {}
  for (const key of Object.keys(data)) {
    const v = data[key]
    if (v === undefined) continue
    out[key] = v instanceof Date ? v.toISOString() : v
  }
  return out
}

function assertEqual (actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

// --- golden vector (from the reference notes) ------------------------------

const golden = {
  id: 'zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M',
  secret: 'keyboard cat',
  hmac_sha256_hex: '3ab6617d32c01c7435d5ba72ccaadbbd7e19177a60e04d9543a707fa23e74699',
  signed: 's:zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk',
  cookie_value: 's%3AzqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH%2BiPnRpk',
  other_secret: 'not keyboard cat'
}

function checkGolden () {
  const hex = crypto.createHmac('sha256', golden.secret).update(golden.id).digest('hex')
  assertEqual(hex, golden.hmac_sha256_hex, 'golden hmac')
  const signed = 's:' + signature.sign(golden.id, golden.secret)
  assertEqual(signed, golden.signed, 'golden signed')
  assertEqual(encodeURIComponent(signed), golden.cookie_value, 'golden cookie value')
  assertEqual(signature.unsign(golden.signed.slice(2), golden.secret), golden.id, 'golden unsign')
  assertEqual(signature.unsign(golden.signed.slice(2), golden.other_secret), false, 'golden unsign other secret')
  assertEqual(readId(`connect.sid=${golden.cookie_value}`, 'connect.sid', [golden.secret]), golden.id, 'golden read')

  // The Set-Cookie examples of the reference notes (now = 2026-01-01T12:00:00Z).
  const v = golden.cookie_value
  assertEqual(
    setCookieHeader('connect.sid', golden.id, golden.secret,
      cookieData({ expires: '2026-01-02T12:00:00.000Z' })),
    `connect.sid=${v}; Path=/; Expires=Fri, 02 Jan 2026 12:00:00 GMT; HttpOnly`,
    'golden set-cookie maxAge 1 day')
  assertEqual(
    setCookieHeader('connect.sid', golden.id, golden.secret, cookieData({})),
    `connect.sid=${v}; Path=/; HttpOnly`,
    'golden set-cookie default')
  assertEqual(
    setCookieHeader('connect.sid', golden.id, golden.secret,
      cookieData({ expires: '2026-01-01T13:00:00.000Z', secure: true, sameSite: 'lax', domain: 'example.com' })),
    `connect.sid=${v}; Domain=example.com; Path=/; Expires=Thu, 01 Jan 2026 13:00:00 GMT; HttpOnly; Secure; SameSite=Lax`,
    'golden set-cookie secure lax domain')
}

// --- inputs ----------------------------------------------------------------

const secrets = [
  'keyboard cat',
  'correct horse battery staple',
  's3cr3t',
  'a',
  'pässwörd🔑',
  '秘密の鍵',
  'with  two  spaces and a trailing one ',
  '\ttab\tseparated\t',
  'quote"and\\backslash',
  '=+/.;,:%',
  'x'.repeat(200),
  'long secret with 64 bytes of entropy: ' + crypto.createHash('sha256').update('fixed').digest('hex'),
  'Ωμέγα',
  'emoji 🙂🙃 pair'
]

const customIds = [
  'simple',
  'with.dot',
  'a.b.c.d',
  '.leading-dot',
  'trailing-dot.',
  'with space',
  '  padded  ',
  'per%cent',
  '%41%42',
  'plus+sign',
  'slash/id',
  'a+b/c=d',
  'colon:id',
  's:looks-signed',
  'semi;colon',
  'comma,id',
  'quote"id',
  "apostrophe'id",
  'équipe',
  'ünïcödé-ïd',
  '日本語のID',
  '🔑🍪',
  'mixed Ωmega 🙂 + /.%',
  'tab\tid',
  'x'.repeat(128),
  '12345',
  '-_-_-',
  'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  '~!*()\'',
  '=equals='
]

const names = ['connect.sid', 'connect.sid', 'connect.sid', 'sid', 'my-session', '__Host-sid', '__Secure-sid', 'app_session']

const expiries = [
  '2026-01-02T12:00:00.000Z',
  '2026-01-01T13:00:00.000Z',
  '2026-03-09T08:07:06.123Z',
  '2025-12-31T23:59:59.999Z',
  '2030-02-28T00:00:00.000Z',
  '2032-02-29T12:34:56.789Z',
  '2038-01-19T03:14:08.000Z',
  '2099-12-31T23:59:59.000Z',
  '1999-07-04T05:06:07.000Z',
  '1970-01-01T00:00:00.000Z',
  '2001-09-09T01:46:40.500Z'
]

const domains = ['example.com', '.example.com', 'sub.example.co.uk', 'localhost', '127.0.0.1']
const paths = ['/', '/', '/', '/app', '/api/v1', '/a-b_c.d', '/deep/nested/path/']
const priorities = ['low', 'medium', 'high', 'Low', 'MEDIUM', 'High']
const sameSites = [true, false, 'lax', 'strict', 'none', 'Lax', 'Strict', 'None']

function randomOptions () {
  const o = {}
  o.path = pick(paths)
  o.httpOnly = randInt(5) !== 0
  if (randInt(2)) o.domain = pick(domains)
  if (randInt(4) !== 0) o.expires = pick(expiries)
  if (randInt(2)) o.secure = randInt(3) !== 0
  if (randInt(4) === 0) o.partitioned = randInt(3) !== 0
  if (randInt(3) === 0) o.priority = pick(priorities)
  if (randInt(3) !== 0) o.sameSite = pick(sameSites)
  return o
}

// --- sign vectors ------------------------------------------------------------

function signVector (id, secret, name, options) {
  const data = cookieData(options)
  const signed = 's:' + signature.sign(id, secret)
  const v = {
    id,
    secret,
    name,
    signature: signed.slice(signed.lastIndexOf('.') + 1),
    signed,
    cookie_value: encodeURIComponent(signed),
    options: optionsForJson(data),
    set_cookie: setCookieHeader(name, id, secret, data)
  }
  assertEqual(v.set_cookie.split(';')[0], `${name}=${v.cookie_value}`, 'set-cookie pair')
  assertEqual(v.signature.length, 43, 'signature length')
  // Whatever we emit must read back to the id.
  assertEqual(readId(`${name}=${v.cookie_value}`, name, [secret]), id, 'sign round trip')
  return v
}

function buildSign () {
  const out = []
  // Every option on its own, so each attribute has a minimal vector.
  const single = [
    {},
    { httpOnly: false },
    { path: '/app' },
    { domain: 'example.com' },
    { expires: '2026-01-02T12:00:00.000Z' },
    { secure: true },
    { secure: false },
    { partitioned: true },
    { partitioned: false },
    { priority: 'low' },
    { priority: 'medium' },
    { priority: 'high' },
    { sameSite: true },
    { sameSite: false },
    { sameSite: 'lax' },
    { sameSite: 'strict' },
    { sameSite: 'none' },
    // every attribute at once, to pin the order
    {
      domain: 'example.com',
      path: '/app',
      expires: '2026-01-02T12:00:00.000Z',
      httpOnly: true,
      secure: true,
      partitioned: true,
      priority: 'High',
      sameSite: 'None'
    }
  ]
  for (const o of single) {
    out.push(signVector(golden.id, golden.secret, 'connect.sid', Object.assign({ path: '/', httpOnly: true }, o)))
  }
  // Each odd id and each secret at least once.
  for (let i = 0; i < customIds.length; i++) {
    out.push(signVector(customIds[i], secrets[i % secrets.length], pick(names), randomOptions()))
  }
  for (const s of secrets) {
    out.push(signVector(uidSafeStyle(), s, 'connect.sid', randomOptions()))
  }
  // Fill up with random combinations.
  while (out.length < 200) {
    const id = randInt(4) === 0 ? pick(customIds) : uidSafeStyle()
    out.push(signVector(id, pick(secrets), pick(names), randomOptions()))
  }
  return out
}

// --- verify vectors ----------------------------------------------------------

function buildVerify () {
  const out = []
  function add (label, name, header, secretList, expected) {
    const got = readId(header, name, secretList)
    if (got !== expected) {
      throw new Error(`verify case ${label}: expected ${JSON.stringify(expected)}, real packages give ${JSON.stringify(got)}`)
    }
    out.push({
      case: label,
      name,
      cookie_header: header,
      cookie_value: firstRawValue(header, name),
      secrets: secretList,
      expect_id: got
    })
  }
  // Replace the character at index i with a different one from the same
  // alphabet, chosen deterministically.
  function flipChar (str, i) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
    const c = str[i]
    const next = alphabet[(alphabet.indexOf(c) + 1 + randInt(alphabet.length - 1)) % alphabet.length]
    return str.slice(0, i) + (next === c ? (c === 'A' ? 'B' : 'A') : next) + str.slice(i + 1)
  }

  const rounds = [
    { id: golden.id, secret: golden.secret, other: 'keyboard dog' },
    { id: uidSafeStyle(), secret: 'pässwörd🔑', other: 'passwörd🔑' },
    { id: uidSafeStyle(), secret: 'x'.repeat(200), other: 'x'.repeat(199) },
    { id: 'with.dot', secret: 'with  two  spaces and a trailing one ', other: 'with two spaces and a trailing one' },
    { id: 'mixed Ωmega 🙂 + /.%', secret: '秘密の鍵', other: '秘密の键' },
    { id: uidSafeStyle(), secret: 's3cr3t', other: 'S3cr3t' }
  ]

  for (const r of rounds) {
    const n = 'connect.sid'
    const signed = 's:' + signature.sign(r.id, r.secret)
    const dot = signed.lastIndexOf('.')
    const sig = signed.slice(dot + 1)
    const body = signed.slice(0, dot) // "s:" + id
    const enc = encodeURIComponent
    const one = [r.secret]

    // positive baselines
    add('valid', n, `${n}=${enc(signed)}`, one, r.id)
    // cookie.parse only decodes values that contain '%', so a raw "s:" value
    // works too (only sensible when the id is plain printable ASCII).
    if (/^[\x21-\x7e]*$/.test(signed) && !/[%;,"\\]/.test(signed)) {
      add('valid-raw-unencoded', n, `${n}=${signed}`, one, r.id)
    }

    // tampering
    add('tampered-signature-first-char', n, `${n}=${enc(body + '.' + flipChar(sig, 0))}`, one, null)
    add('tampered-signature-last-char', n, `${n}=${enc(body + '.' + flipChar(sig, 42))}`, one, null)
    add('tampered-signature-middle-char', n, `${n}=${enc(body + '.' + flipChar(sig, 21))}`, one, null)
    if (/^[A-Za-z0-9]/.test(r.id)) {
      add('tampered-id', n, `${n}=${enc('s:' + flipChar(r.id, 0) + '.' + sig)}`, one, null)
    }
    add('signature-url-safe-alphabet', n,
      `${n}=${enc(body + '.' + sig.replace(/\+/g, '-').replace(/\//g, '_'))}`, one,
      /[+/]/.test(sig) ? null : r.id)
    add('signature-upper-cased', n, `${n}=${enc(body + '.' + sig.toUpperCase())}`, one,
      sig === sig.toUpperCase() ? r.id : null)

    // truncation
    add('truncated-signature-1', n, `${n}=${enc(signed.slice(0, -1))}`, one, null)
    add('truncated-signature-22', n, `${n}=${enc(signed.slice(0, -22))}`, one, null)
    add('signature-removed-keep-dot', n, `${n}=${enc(body + '.')}`, one, null)
    add('signature-removed', n, `${n}=${enc(body)}`, one, null)
    add('only-prefix', n, `${n}=${enc('s:')}`, one, null)

    // extra bytes
    add('trailing-x', n, `${n}=${enc(signed + 'x')}`, one, null)
    add('trailing-base64-padding', n, `${n}=${enc(signed + '=')}`, one, null)
    add('trailing-encoded-space', n, `${n}=${enc(signed)}%20`, one, null)
    add('trailing-dot', n, `${n}=${enc(signed + '.')}`, one, null)
    add('signature-doubled', n, `${n}=${enc(signed + '.' + sig)}`, one, null)
    add('leading-space-inside-value', n, `${n}=%20${enc(signed)}`, one, null)

    // wrong secret
    add('other-secret', n, `${n}=${enc(signed)}`, [r.other], null)
    add('other-secrets-list', n, `${n}=${enc(signed)}`, [r.other, 'keyboard dog', 'z'], null)

    // prefix problems
    add('missing-s-prefix', n, `${n}=${enc(signed.slice(2))}`, one, null)
    add('upper-case-S-prefix', n, `${n}=${enc('S:' + signed.slice(2))}`, one, null)
    add('prefix-without-colon', n, `${n}=${enc('s' + signed.slice(2))}`, one, null)
    add('lower-case-hex-prefix', n, `${n}=${enc(signed).replace('s%3A', 's%3a')}`, one, r.id)

    // rotation: signed with B, verified with lists containing B
    add('rotation-new-first', n, `${n}=${enc(signed)}`, [r.other, r.secret], r.id)
    add('rotation-third', n, `${n}=${enc(signed)}`, ['first', r.other, r.secret, 'last'], r.id)
    add('rotation-old-first', n, `${n}=${enc(signed)}`, [r.secret, r.other], r.id)
  }

  // Header-level quirks with the golden values.
  const n = 'connect.sid'
  const good = golden.cookie_value
  const gs = [golden.secret]
  const badSig = golden.cookie_value.slice(0, -1) + (golden.cookie_value.endsWith('k') ? 'j' : 'k')
  add('among-other-cookies', n, `a=1; ${n}=${good}; b=2`, gs, golden.id)
  add('whitespace-around-pair', n, `a=1;   ${n} =\t${good}  ;b=2`, gs, golden.id)
  add('double-quoted-value', n, `${n}="${good}"`, gs, golden.id)
  add('duplicate-name-first-valid', n, `${n}=${good}; ${n}=${badSig}`, gs, golden.id)
  add('duplicate-name-first-invalid', n, `${n}=${badSig}; ${n}=${good}`, gs, null)
  add('duplicate-name-first-empty', n, `${n}=; ${n}=${good}`, gs, null)
  add('other-name-only', n, `connect.sid2=${good}; sid=${good}`, gs, null)
  add('name-case-differs', n, `Connect.sid=${good}`, gs, null)
  add('custom-name', 'sid', `connect.sid=garbage; sid=${good}`, gs, golden.id)
  add('empty-header', n, '', gs, null)
  add('empty-value', n, `${n}=`, gs, null)
  add('malformed-percent-encoding', n, `${n}=${good}%ZZ`, gs, null)
  add('malformed-percent-keeps-raw', n, `${n}=s%3A${golden.id}%G1`, gs, null)
  add('unsigned-plain-id', n, `${n}=${golden.id}`, gs, null)
  add('id-encoded-twice', n, `${n}=${encodeURIComponent(good)}`, gs, null)
  const emptyId = 's:' + signature.sign('', golden.secret)
  add('signed-empty-id', n, `${n}=${encodeURIComponent(emptyId)}`, gs, null)
  return out
}

// --- main --------------------------------------------------------------------

function main () {
  checkGolden()
  const doc = {
    version: 1,
    generated_by: 'tests/interop/gen_vectors.js',
    packages: {
      'express-session': pkgVersion('express-session'),
      'cookie-signature': pkgVersion('cookie-signature'),
      cookie: pkgVersion('cookie')
    },
    golden,
    sign: buildSign(),
    verify: buildVerify()
  }
  const outPath = process.argv[2] ||
    path.join(__dirname, '..', 'fixtures', 'cookie_vectors.json')
  fs.mkdirSync(path.dirname(outPath), { recursive: true })
  fs.writeFileSync(outPath, JSON.stringify(doc, null, 2) + '\n')
  console.log(`wrote ${doc.sign.length} sign and ${doc.verify.length} verify vectors to ${outPath}`)
}

main()
