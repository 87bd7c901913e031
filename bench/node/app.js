// The Node peer for bench/run.sh: the bench routes on express + express-session.
//
//   BENCH_STORE=memory|redis  (default memory)   REDIS_URL (default redis://127.0.0.1:6379)
//   BENCH_PREFIX (Redis key prefix, default "bench-node:")   PORT (default 3000)
//
// Same options as the Rust servers: resave false, saveUninitialized false, one secret, the
// session middleware on every route (as an app mounts it).
'use strict'

const express = require('express')
const session = require('express-session')

const kind = process.env.BENCH_STORE || 'memory'
const port = Number(process.env.PORT || 3000)

async function makeStore () {
  if (kind === 'memory') return { store: new session.MemoryStore(), close: async () => {} }
  if (kind !== 'redis') throw new Error(`BENCH_STORE must be memory or redis, not ${kind}`)
  const { createClient } = require('redis')
  const { RedisStore } = require('connect-redis')
  const client = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' })
  client.on('error', (err) => console.error('redis client error:', err.message))
  await client.connect()
  const prefix = process.env.BENCH_PREFIX || 'bench-node:'
  return { store: new RedisStore({ client, prefix }), close: () => client.quit() }
}

async function main () {
  const { store, close } = await makeStore()
  const app = express()
  app.disable('x-powered-by')
  app.use(session({ secret: 'bench secret', resave: false, saveUninitialized: false, store }))
  app.get('/hello', (req, res) => res.send('hello'))
  app.get('/', (req, res) => {
    req.session.user = 'alice'
    res.send('set')
  })
  app.get('/get', (req, res) => res.send(req.session.user || 'nobody'))
  app.get('/inc', (req, res) => {
    req.session.n = (req.session.n || 0) + 1
    res.send(String(req.session.n))
  })
  app.get('/count', (req, res) => res.send(String(req.session.n || 0)))
  const server = app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`))
  const stop = () => server.close(() => close().finally(() => process.exit(0)))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
