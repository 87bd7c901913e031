#!/usr/bin/env node
// Scenario server (protocol version 1, see /work/shared/conformance/PROTOCOL.md
// or its copy in the repository) on the real express-session 1.19.0.
//
// It is the source of truth the Rust scenario server is compared with, so it
// does as little as possible on its own: the SESSION_CONFIG keys go to
// express-session unchanged, an absent key stays undefined, and the store is
// the stock MemoryStore or connect-redis 9 behind a thin wrapper that adds the
// test hooks.
//
//   SESSION_CONFIG='{"secret":"s","resave":false,"store":{"type":"memory"}}' \
//   PORT=4000 node scenario_server.js
//
// Harness choices the protocol leaves open (the Rust server must match them):
// * Counters (`/_store/stats`) count a call when the middleware or a session
//   method starts it, including calls that then fail through `/_store/fail`.
//   Calls a store makes to itself (connect-redis `set` turning into `DEL`
//   when the TTL is not positive) are not counted again.
// * `delayMs` delays every counted `set`, failing ones too; the record written
//   is the session as it was when `set` was called.
// * An injected fault answers asynchronously and never reaches the store.
// * An error raised after the response headers went out (for example a
//   cookie that cannot be serialized, or a failed end-of-request save) is
//   logged to stderr and otherwise ignored: the response already carries its
//   status, and the connection is left alone.
'use strict'

const express = require('express')
const session = require('express-session')

const OPS = ['get', 'set', 'destroy', 'touch']
const MAX_WAIT_MS = 10000

function fail (message) {
  console.error(`scenario_server: ${message}`)
  process.exit(2)
}

// --- configuration ---------------------------------------------------------

function readConfig () {
  const raw = process.env.SESSION_CONFIG
  if (raw === undefined) fail('SESSION_CONFIG is not set')
  let cfg
  try {
    cfg = JSON.parse(raw)
  } catch (err) {
    fail(`SESSION_CONFIG is not JSON: ${err.message}`)
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    fail('SESSION_CONFIG must be a JSON object')
  }
  return cfg
}

// Only keys that are present are passed on, so an absent option is undefined
// for express-session (which is not the same as false for resave,
// saveUninitialized and proxy).
function sessionOptions (cfg, store) {
  const opts = { store }
  for (const key of ['name', 'secret', 'resave', 'saveUninitialized', 'rolling', 'unset', 'proxy']) {
    if (Object.prototype.hasOwnProperty.call(cfg, key)) opts[key] = cfg[key]
  }
  if (Object.prototype.hasOwnProperty.call(cfg, 'cookie')) {
    opts.cookie = Object.assign({}, cfg.cookie)
  }
  if (cfg.genid && Object.prototype.hasOwnProperty.call(cfg.genid, 'fixed')) {
    const fixed = String(cfg.genid.fixed)
    opts.genid = function () { return fixed }
  }
  return opts
}

// --- store wrapper -----------------------------------------------------------

// What express-session sees as its store. It forwards get/set/destroy/touch to
// the real store and adds counters, write delay and fault injection. It is an
// express-session Store, so regenerate/createSession/load come from the real
// base class and `connect`/`disconnect` events reach the middleware.
class HarnessStore extends session.Store {
  constructor (inner, delayMs) {
    super()
    this.inner = inner
    this.delayMs = delayMs
    this.resetStats()
    this.faults = {}
  }

  resetStats () {
    this.stats = { get: 0, set: 0, destroy: 0, touch: 0 }
  }

  // Count the call and consume one injected fault for `op`, if any.
  begin (op) {
    this.stats[op]++
    const fault = this.faults[op]
    if (!fault || fault.count <= 0) return null
    fault.count--
    const err = new Error(fault.message)
    if (fault.code !== undefined) err.code = fault.code
    return err
  }

  get (sid, cb) {
    const err = this.begin('get')
    if (err) return setImmediate(cb, err)
    this.inner.get(sid, cb)
  }

  set (sid, sess, cb) {
    const err = this.begin('set')
    const done = cb || function () {}
    if (this.delayMs > 0) {
      const snapshot = JSON.parse(JSON.stringify(sess))
      setTimeout(() => {
        if (err) return done(err)
        this.inner.set(sid, snapshot, done)
      }, this.delayMs)
      return
    }
    if (err) return setImmediate(done, err)
    this.inner.set(sid, sess, done)
  }

  destroy (sid, cb) {
    const err = this.begin('destroy')
    const done = cb || function () {}
    if (err) return setImmediate(done, err)
    this.inner.destroy(sid, done)
  }

  touch (sid, sess, cb) {
    const err = this.begin('touch')
    const done = cb || function () {}
    if (err) return setImmediate(done, err)
    this.inner.touch(sid, sess, done)
  }
}

async function createInnerStore (storeCfg) {
  const type = storeCfg && storeCfg.type
  if (type === 'memory') {
    return { store: new session.MemoryStore(), close: async () => {} }
  }
  if (type === 'redis') {
    const { createClient } = require('redis')
    const { RedisStore } = require('connect-redis')
    const client = createClient({ url: storeCfg.url || 'redis://127.0.0.1:6379' })
    client.on('error', (err) => console.error('redis client error:', err.message))
    await client.connect()
    const redisOpts = { client }
    if (storeCfg.prefix !== undefined) redisOpts.prefix = storeCfg.prefix
    return { store: new RedisStore(redisOpts), close: () => client.quit() }
  }
  fail(`unknown store type ${JSON.stringify(type)}`)
}

// Promisified access to the real store for the admin routes: not counted, no
// delay, no faults.
function call (store, method, ...args) {
  return new Promise((resolve, reject) => {
    store[method](...args, (err, value) => (err ? reject(err) : resolve(value)))
  })
}

// --- helpers -------------------------------------------------------------------

function text (res, status, body) {
  res.status(status)
  res.type('text/plain; charset=utf-8')
  res.send(String(body))
}

function json (res, value) {
  res.status(200)
  res.type('application/json')
  res.send(JSON.stringify(value))
}

// Single-valued application/x-www-form-urlencoded query.
function queryOf (req) {
  const url = req.originalUrl || req.url
  const q = url.indexOf('?')
  const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
  const out = Object.create(null)
  for (const [k, v] of params) {
    if (!(k in out)) out[k] = v
  }
  return out
}

function has (q, key) {
  return Object.prototype.hasOwnProperty.call(q, key)
}

// `key=K&val=V` or `key=K&json=J`; nothing when `key` is absent.
function maybeSet (sess, q) {
  if (!has(q, 'key')) return
  if (has(q, 'val')) {
    sess[q.key] = q.val
  } else if (has(q, 'json')) {
    sess[q.key] = JSON.parse(q.json)
  }
}

function sessionData (sess) {
  const out = {}
  for (const key of Object.keys(sess)) {
    if (key !== 'cookie') out[key] = sess[key]
  }
  return out
}

function cookieJson (c) {
  const expires = c.expires
  return {
    maxAge: c.maxAge === undefined ? null : c.maxAge,
    originalMaxAge: c.originalMaxAge === undefined ? null : c.originalMaxAge,
    expires: expires instanceof Date ? expires.toISOString() : (expires == null ? null : expires),
    path: c.path === undefined ? null : c.path,
    domain: c.domain == null ? null : c.domain,
    httpOnly: Boolean(c.httpOnly),
    secure: Boolean(c.secure),
    sameSite: c.sameSite == null ? null : c.sameSite,
    partitioned: Boolean(c.partitioned),
    priority: c.priority == null ? null : c.priority
  }
}

function parseAttr (value) {
  try {
    return JSON.parse(value)
  } catch (_) {
    return value
  }
}

const COOKIE_ATTRS = ['httpOnly', 'secure', 'sameSite', 'domain', 'path', 'partitioned', 'priority']

// --- session routes ---------------------------------------------------------

// Routes that need a session (marked S in the protocol).
const sessionRoutes = {
  set (req, res, q) {
    maybeSet(req.session, q)
    text(res, 200, 'ok')
  },
  get (req, res, q) {
    const v = req.session[q.key]
    if (v === undefined) return text(res, 200, '')
    text(res, 200, typeof v === 'string' ? v : JSON.stringify(v))
  },
  del (req, res, q) {
    delete req.session[q.key]
    text(res, 200, 'ok')
  },
  readd (req, res, q) {
    const v = req.session[q.key]
    delete req.session[q.key]
    req.session[q.key] = v
    text(res, 200, 'ok')
  },
  inc (req, res, q) {
    const key = has(q, 'key') ? q.key : 'count'
    req.session[key] = (req.session[key] || 0) + 1
    text(res, 200, String(req.session[key]))
  },
  data (req, res) {
    json(res, sessionData(req.session))
  },
  keys (req, res) {
    text(res, 200, Object.keys(req.session).sort().join(','))
  },
  id (req, res) {
    text(res, 200, req.session.id)
  },
  regenerate (req, res, q, next) {
    req.session.regenerate((err) => {
      if (err) return next(err)
      maybeSet(req.session, q)
      text(res, 200, req.sessionID)
    })
  },
  destroy (req, res, q, next) {
    req.session.destroy((err) => {
      if (err) return next(err)
      text(res, 200, 'ok')
    })
  },
  save (req, res, q, next) {
    maybeSet(req.session, q)
    req.session.save((err) => {
      if (err) return next(err)
      text(res, 200, 'saved')
    })
  },
  reload (req, res, q, next) {
    maybeSet(req.session, q)
    req.session.reload((err) => {
      if (err) return next(err)
      if (q.save !== '1') return json(res, sessionData(req.session))
      req.session.save((err2) => {
        if (err2) return next(err2)
        json(res, sessionData(req.session))
      })
    })
  },
  touch (req, res) {
    req.session.touch()
    json(res, cookieJson(req.session.cookie))
  },
  cookie (req, res) {
    json(res, cookieJson(req.session.cookie))
  },
  'set-maxage' (req, res, q) {
    req.session.cookie.maxAge = q.ms === 'null' ? null : Number(q.ms)
    maybeSet(req.session, q)
    text(res, 200, 'ok')
  },
  'set-expires' (req, res, q) {
    req.session.cookie.expires = q.ms === 'null' ? null : new Date(Number(q.ms))
    maybeSet(req.session, q)
    text(res, 200, 'ok')
  },
  'cookie-attr' (req, res, q) {
    for (const attr of COOKIE_ATTRS) {
      if (has(q, attr)) req.session.cookie[attr] = parseAttr(q[attr])
    }
    text(res, 200, 'ok')
  },
  'null-session' (req, res) {
    req.session = null
    text(res, 200, 'ok')
  },
  error (req, res, q) {
    maybeSet(req.session, q)
    throw new Error('boom')
  }
}

// Routes that work with or without a session.
const plainRoutes = {
  '' (req, res) {
    text(res, 200, 'ok')
  },
  noop (req, res) {
    text(res, 200, 'ok')
  },
  'other-cookie' (req, res, q) {
    res.setHeader('Set-Cookie', `${q.name}=${q.val}; Path=/; HttpOnly`)
    text(res, 200, 'ok')
  }
}

function dispatch (req, res, next) {
  const segments = req.path.split('/')
  const route = segments[segments.length - 1]
  const q = queryOf(req)
  const act = () => {
    try {
      if (Object.prototype.hasOwnProperty.call(plainRoutes, route)) {
        return plainRoutes[route](req, res, q, next)
      }
      if (Object.prototype.hasOwnProperty.call(sessionRoutes, route)) {
        if (!req.session) return text(res, 200, 'no-session')
        return sessionRoutes[route](req, res, q, next)
      }
      text(res, 404, 'unknown route')
    } catch (err) {
      next(err)
    }
  }
  const wait = has(q, 'wait') ? Math.min(Math.max(Number(q.wait) || 0, 0), MAX_WAIT_MS) : 0
  if (wait > 0) setTimeout(act, wait)
  else act()
}

// --- admin routes ---------------------------------------------------------------

function adminRouter (harness) {
  const inner = harness.inner
  const routes = {
    async stats (req, res) {
      json(res, harness.stats)
    },
    async reset (req, res) {
      harness.resetStats()
      harness.faults = {}
      harness.emit('connect')
      await call(inner, 'clear')
      text(res, 200, 'ok')
    },
    async 'reset-stats' (req, res) {
      harness.resetStats()
      text(res, 200, 'ok')
    },
    async get (req, res, q) {
      const record = await call(inner, 'get', q.sid)
      if (record == null) return text(res, 404, 'not found')
      json(res, record)
    },
    async put (req, res, q) {
      await call(inner, 'set', q.sid, JSON.parse(q.json))
      text(res, 200, 'ok')
    },
    async destroy (req, res, q) {
      await call(inner, 'destroy', q.sid)
      text(res, 200, 'ok')
    },
    async length (req, res) {
      const n = await call(inner, 'length')
      text(res, 200, String(n))
    },
    async clear (req, res) {
      await call(inner, 'clear')
      text(res, 200, 'ok')
    },
    async fail (req, res, q) {
      if (!OPS.includes(q.op)) return text(res, 400, 'bad op')
      const fault = { count: has(q, 'count') ? Number(q.count) : 1, message: q.message }
      if (has(q, 'code')) fault.code = q.code
      harness.faults[q.op] = fault
      text(res, 200, 'ok')
    },
    async disconnect (req, res) {
      harness.emit('disconnect')
      text(res, 200, 'ok')
    },
    async connect (req, res) {
      harness.emit('connect')
      text(res, 200, 'ok')
    }
  }
  return function admin (req, res, next) {
    const name = req.path.slice('/_store/'.length)
    if (!Object.prototype.hasOwnProperty.call(routes, name)) return text(res, 404, 'unknown route')
    routes[name](req, res, queryOf(req)).catch(next)
  }
}

// --- main ---------------------------------------------------------------------

async function main () {
  const cfg = readConfig()
  const port = Number(process.env.PORT)
  if (!Number.isInteger(port) || port <= 0) fail('PORT is not set')

  const storeCfg = cfg.store || { type: 'memory' }
  const { store: inner } = await createInnerStore(storeCfg)
  const harness = new HarnessStore(inner, Number(storeCfg.delayMs) || 0)

  // express-session validates its options here; a TypeError ends the process
  // with a non-zero status (see the catch below) before it ever listens.
  const middleware = session(sessionOptions(cfg, harness))

  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  if (cfg.trustProxy === true) app.set('trust proxy', true)

  // The admin routes come first so they never pass through the middleware.
  const admin = adminRouter(harness)
  app.use((req, res, next) => {
    if (req.path.startsWith('/_store/')) return admin(req, res, next)
    next()
  })
  app.use(middleware)
  app.use(dispatch)

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (res.headersSent) {
      console.error(`error after headers were sent (${req.method} ${req.originalUrl}): ${err.message}`)
      return
    }
    text(res, err.status || 500, err.message)
  })

  const server = app.listen(port, '127.0.0.1', () => {
    console.log(`listening ${port}`)
  })
  server.on('error', (err) => fail(`listen: ${err.message}`))
}

main().catch((err) => {
  console.error(`scenario_server: startup failed: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})
