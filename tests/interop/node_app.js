#!/usr/bin/env node
// A small Express app on the real express-session, for cross-language tests:
// the Rust side and this app share one store and one cookie, and each must
// read what the other wrote.
//
// Environment:
//   PORT            TCP port on 127.0.0.1 (required)
//   SESSION_SECRET  a JSON array of strings (if it starts with "[") or a plain
//                   string used as is; default "keyboard cat"
//   SESSION_NAME    cookie name; default connect.sid
//   STORE           redis | postgres | mysql | memory; default memory
//   REDIS_URL       default redis://127.0.0.1:6379
//   REDIS_PREFIX    key prefix; connect-redis default "sess:" when unset
//   DATABASE_URL    default postgres://postgres@127.0.0.1:5432/test
//   PG_TABLE        table name; connect-pg-simple default "session" when unset
//   PG_SCHEMA       optional schema (must exist). connect-pg-simple names the
//                   primary key "session_pkey" and the index
//                   "IDX_session_expire" whatever the table is called, so a
//                   second auto-created table in one schema fails; use one
//                   schema per table when tests need several.
//   MYSQL_URL       default mysql://root@127.0.0.1:3306/test
//   MYSQL_TABLE     table name; express-mysql-session default "sessions" when unset
//   MAX_AGE_MS      optional cookie maxAge in ms (unset: browser-session cookie)
//
// Session options: resave false, saveUninitialized false, everything else at
// express-session's defaults.
//
// Routes (any method, text/plain unless noted):
//   /set?key=K&val=V   session[K] = V (a string)          -> ok
//   /get?key=K         the value (non-strings as JSON), empty body if absent
//   /data              JSON (application/json) of the session without cookie
//   /id                the session id
//   /regenerate        session.regenerate(), nothing kept -> the new id
//   /destroy           session.destroy()                  -> ok
//   /inc?key=K         session[K] = (session[K] || 0) + 1 -> the new value
//   /health            ok, without touching the session
//
// Prints "listening <port>" on stdout once the store is usable (Redis
// connected, SQL table created) and the HTTP server accepts connections.
'use strict'

const express = require('express')
const session = require('express-session')

function env (name, fallback) {
  const v = process.env[name]
  return v === undefined || v === '' ? fallback : v
}

function parseSecret (raw) {
  if (raw.trimStart().startsWith('[')) {
    const list = JSON.parse(raw)
    if (!Array.isArray(list)) throw new Error('SESSION_SECRET: expected a JSON array')
    return list
  }
  return raw
}

// mysql://user:password@host:port/database -> the keys express-mysql-session
// passes on to mysql2 (it does not accept a URL itself).
function mysqlOptions (url) {
  const u = new URL(url)
  const opts = {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'test'
  }
  if (u.password) opts.password = decodeURIComponent(u.password)
  return opts
}

// Returns { store, ready: Promise, close: () => Promise }.
function createStore (kind) {
  if (kind === 'memory') {
    return { store: new session.MemoryStore(), ready: Promise.resolve(), close: async () => {} }
  }
  if (kind === 'redis') {
    const { createClient } = require('redis')
    const { RedisStore } = require('connect-redis')
    const client = createClient({ url: env('REDIS_URL', 'redis://127.0.0.1:6379') })
    client.on('error', (err) => console.error('redis client error:', err.message))
    const opts = { client }
    if (process.env.REDIS_PREFIX !== undefined) opts.prefix = process.env.REDIS_PREFIX
    return {
      store: new RedisStore(opts),
      ready: client.connect(),
      close: () => client.quit()
    }
  }
  if (kind === 'postgres') {
    const PgStore = require('connect-pg-simple')(session)
    const opts = {
      conString: env('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/test'),
      createTableIfMissing: true
    }
    if (process.env.PG_TABLE) opts.tableName = process.env.PG_TABLE
    if (process.env.PG_SCHEMA) opts.schemaName = process.env.PG_SCHEMA
    const store = new PgStore(opts)
    // The table is created lazily before the first query; run one now so it
    // exists before we report ready. An unknown id is simply not found.
    const ready = new Promise((resolve, reject) => {
      store.get('node-app-readiness-probe', (err) => (err ? reject(err) : resolve()))
    })
    return { store, ready, close: () => store.close() }
  }
  if (kind === 'mysql') {
    const MySQLStore = require('express-mysql-session')(session)
    const opts = Object.assign(mysqlOptions(env('MYSQL_URL', 'mysql://root@127.0.0.1:3306/test')), {
      createDatabaseTable: true
    })
    if (process.env.MYSQL_TABLE) opts.schema = { tableName: process.env.MYSQL_TABLE }
    const store = new MySQLStore(opts)
    return { store, ready: store.onReady(), close: () => store.close() }
  }
  throw new Error(`STORE must be redis, postgres, mysql or memory, not ${JSON.stringify(kind)}`)
}

function text (res, status, body) {
  res.status(status).type('text/plain; charset=utf-8').send(String(body))
}

async function main () {
  const port = Number(process.env.PORT)
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT is not set')

  const backend = createStore(env('STORE', 'memory'))
  await backend.ready

  const opts = {
    store: backend.store,
    secret: parseSecret(env('SESSION_SECRET', 'keyboard cat')),
    name: env('SESSION_NAME', 'connect.sid'),
    resave: false,
    saveUninitialized: false
  }
  if (process.env.MAX_AGE_MS) opts.cookie = { maxAge: Number(process.env.MAX_AGE_MS) }

  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)

  app.all('/health', (req, res) => text(res, 200, 'ok'))
  app.use(session(opts))

  const q = (req, name) => (typeof req.query[name] === 'string' ? req.query[name] : undefined)

  app.all('/set', (req, res) => {
    req.session[q(req, 'key')] = q(req, 'val')
    text(res, 200, 'ok')
  })
  app.all('/get', (req, res) => {
    const v = req.session[q(req, 'key')]
    if (v === undefined) return text(res, 200, '')
    text(res, 200, typeof v === 'string' ? v : JSON.stringify(v))
  })
  app.all('/data', (req, res) => {
    const out = {}
    for (const key of Object.keys(req.session)) {
      if (key !== 'cookie') out[key] = req.session[key]
    }
    res.status(200).type('application/json').send(JSON.stringify(out))
  })
  app.all('/id', (req, res) => text(res, 200, req.sessionID))
  app.all('/regenerate', (req, res, next) => {
    req.session.regenerate((err) => (err ? next(err) : text(res, 200, req.sessionID)))
  })
  app.all('/destroy', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : text(res, 200, 'ok')))
  })
  app.all('/inc', (req, res) => {
    const key = q(req, 'key') || 'count'
    req.session[key] = (req.session[key] || 0) + 1
    text(res, 200, String(req.session[key]))
  })
  app.use((req, res) => text(res, 404, 'unknown route'))
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    console.error(`error (${req.method} ${req.originalUrl}): ${err.stack || err.message}`)
    if (!res.headersSent) text(res, err.status || 500, err.message)
  })

  const server = app.listen(port, '127.0.0.1', () => console.log(`listening ${port}`))
  server.on('error', (err) => {
    console.error(`listen: ${err.message}`)
    process.exit(1)
  })

  const shutdown = () => {
    server.close()
    Promise.resolve(backend.close()).catch(() => {}).finally(() => process.exit(0))
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

main().catch((err) => {
  console.error(`node_app: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})
