//! Commands that concurrent requests send at the same moment leave as one pipeline.
//!
//! The multiplexed connection under [`ConnectionManager`] writes whatever commands are waiting
//! when its task runs, but tokio runs a task woken by the running one next, so under load it
//! runs after every single command and writes each alone: one `writev` (and one pass through
//! the kernel's TCP stack, on both sides) per command. Here a command joins a queue instead;
//! the first one into an empty queue spawns a flush that first yields, so every request that is
//! ready to run gets to add its command, and then sends the whole queue as one pipeline. Redis
//! answers a pipeline in order, so each caller gets its own reply; a server error in one reply
//! is that caller's alone. A lone command waits one pass of the scheduler, no timer.
//!
//! Callers keep their own timeouts (the store's command timeout), and the flush has the same
//! one: a caller that gives up drops its receiver, a flush leaves out commands whose callers
//! are gone, and a flush that times out drops its commands, sent or not, as a caller's own call
//! would. The flush is a task of its own, so a cancelled caller never strands the others.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use redis::{
    aio::{ConnectionLike, ConnectionManager},
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};
use tokio::sync::oneshot;

/// A connection (the store's [`ConnectionManager`]) whose single commands are sent in batches.
#[derive(Clone)]
pub(super) struct Batched<C = ConnectionManager> {
    manager: C,
    queue: Arc<Mutex<Queue>>,
    /// The store's command timeout, which also bounds each batch.
    timeout: Duration,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(Cmd, oneshot::Sender<RedisResult<Value>>)>,
    /// A flush is spawned and has not taken the queue yet: new commands join it.
    flush_pending: bool,
}

impl<C> Batched<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    pub(super) fn new(manager: C, timeout: Duration) -> Self {
        Self {
            manager,
            queue: Arc::default(),
            timeout,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every critical section leaves the queue consistent, so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `cmd` for the next batch and waits for its reply; a server error in the reply
    /// comes back as this command's error.
    pub(super) async fn send(&self, cmd: Cmd) -> RedisResult<Value> {
        let (reply, receiver) = oneshot::channel();
        let spawn_flush = {
            let mut queue = self.queue();
            queue.waiting.push((cmd, reply));
            !std::mem::replace(&mut queue.flush_pending, true)
        };
        if spawn_flush {
            tokio::spawn(self.clone().flush());
        }
        receiver.await.unwrap_or_else(|_| Err(flush_dropped()))
    }

    /// Waits one pass of the scheduler, then sends what has queued up, bounded by the command
    /// timeout as its callers are: a command whose callers all gave up is not sent later, when
    /// a reconnect completes, behind their backs.
    async fn flush(mut self) {
        tokio::task::yield_now().await;
        let batch = {
            let mut queue = self.queue();
            queue.flush_pending = false;
            std::mem::take(&mut queue.waiting)
        };
        let mut pipeline = Pipeline::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (cmd, reply) in batch {
            if !reply.is_closed() {
                pipeline.add_command(cmd);
                replies.push(reply);
            }
        }
        let n = replies.len();
        if n == 0 {
            return;
        }
        let manager = &mut self.manager;
        let sent = async {
            match pipeline.cmd_iter().next() {
                // A lone command goes as itself, not as a pipeline of one.
                Some(cmd) if n == 1 => manager.req_packed_command(cmd).await.map(|value| vec![value]),
                _ => manager.req_packed_commands(&pipeline, 0, n).await,
            }
        };
        let outcome = tokio::time::timeout(self.timeout, sent)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        answer(replies, outcome);
    }
}

/// Hands each caller its reply from `outcome`, in order; a failure of the whole batch goes to
/// every caller (the original error to one, copies to the others).
fn answer(replies: Vec<oneshot::Sender<RedisResult<Value>>>, outcome: RedisResult<Vec<Value>>) {
    match outcome {
        Ok(values) if values.len() == replies.len() => {
            for (value, reply) in values.into_iter().zip(replies) {
                let _ = reply.send(value.extract_error());
            }
        }
        Ok(values) => {
            let detail = format!("{} replies for {} commands", values.len(), replies.len());
            for reply in replies {
                let err = (
                    ErrorKind::ResponseError,
                    "wrong number of replies to a pipeline",
                    detail.clone(),
                );
                let _ = reply.send(Err(err.into()));
            }
        }
        Err(err) => {
            let mut replies = replies.into_iter();
            let last = replies.next_back();
            for reply in replies {
                let _ = reply.send(Err(copy_error(&err)));
            }
            if let Some(last) = last {
                let _ = last.send(Err(err));
            }
        }
    }
}

fn timed_out() -> RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no reply from Redis within the command timeout",
    )
    .into()
}

/// The same failure for another caller ([`RedisError`] is not `Clone`): an I/O error stays an
/// I/O error of the same kind, so the store sorts every copy as it would the original.
fn copy_error(err: &RedisError) -> RedisError {
    let message = err.to_string();
    if err.is_timeout() {
        std::io::Error::new(std::io::ErrorKind::TimedOut, message).into()
    } else if err.is_connection_refusal() {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, message).into()
    } else if err.is_connection_dropped() {
        std::io::Error::new(std::io::ErrorKind::ConnectionReset, message).into()
    } else if err.is_io_error() {
        std::io::Error::other(message).into()
    } else {
        (err.kind(), "a pipeline of batched commands failed", message).into()
    }
}

fn flush_dropped() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the batch carrying this command was dropped (runtime shutting down)",
    ))
}

impl<C> ConnectionLike for Batched<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.send(cmd.clone()))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // A caller's own pipeline is already one write.
        self.manager.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.manager.get_db()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use redis::Arg;

    use super::*;

    /// A connection that answers each command with its first argument (or a server error for
    /// `bad`), and logs how many commands each write to it carried.
    #[derive(Clone, Default)]
    struct Fake {
        writes: Arc<Mutex<Vec<usize>>>,
        never_answers: bool,
        sent: Arc<AtomicUsize>,
    }

    impl Fake {
        fn answer(cmd: &Cmd) -> Value {
            match cmd.args_iter().nth(1) {
                Some(Arg::Simple(b"bad")) => redis::parse_redis_value(b"-WRONGTYPE not a string\r\n").unwrap(),
                Some(Arg::Simple(key)) => Value::BulkString(key.to_vec()),
                _ => Value::Nil,
            }
        }

        async fn write(&self, cmds: Vec<Value>) -> RedisResult<Vec<Value>> {
            self.writes.lock().unwrap().push(cmds.len());
            self.sent.fetch_add(cmds.len(), Ordering::SeqCst);
            if self.never_answers {
                std::future::pending::<()>().await;
            }
            Ok(cmds)
        }
    }

    impl ConnectionLike for Fake {
        fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
            Box::pin(async move { Ok(self.write(vec![Self::answer(cmd)]).await?.remove(0)) })
        }

        fn req_packed_commands<'a>(&'a mut self, cmd: &'a Pipeline, _: usize, _: usize) -> RedisFuture<'a, Vec<Value>> {
            Box::pin(self.write(cmd.cmd_iter().map(Self::answer).collect()))
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    async fn get(conn: &Batched<Fake>, key: &str) -> RedisResult<Value> {
        conn.clone().req_packed_command(redis::cmd("GET").arg(key)).await
    }

    /// One worker thread: tokio runs a task woken by the running one next, which is what makes
    /// an unbatched multiplexed connection write every command alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn commands_sent_together_go_in_one_write_and_each_gets_its_own_reply() {
        let fake = Fake::default();
        let conn = Batched::new(fake.clone(), Duration::from_secs(5));
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    let key = if i == 17 { "bad".to_owned() } else { format!("k{i}") };
                    (i, get(&conn, &key).await)
                })
            })
            .collect();
        for task in tasks {
            let (i, reply) = task.await.unwrap();
            if i == 17 {
                let err = reply.unwrap_err();
                assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
            } else {
                assert_eq!(reply.unwrap(), Value::BulkString(format!("k{i}").into_bytes()));
            }
        }
        let writes = fake.writes.lock().unwrap().clone();
        assert_eq!(writes.iter().sum::<usize>(), 40);
        assert!(
            writes.len() <= 2,
            "40 concurrent commands took {} writes: {writes:?}",
            writes.len()
        );

        // A lone command goes alone.
        assert_eq!(get(&conn, "solo").await.unwrap(), Value::BulkString(b"solo".to_vec()));
        assert_eq!(fake.writes.lock().unwrap().last(), Some(&1));
    }

    #[tokio::test]
    async fn a_batch_that_gets_no_reply_times_out_for_every_caller() {
        let fake = Fake {
            never_answers: true,
            ..Fake::default()
        };
        let conn = Batched::new(fake.clone(), Duration::from_millis(50));
        let (a, b) = tokio::join!(get(&conn, "a"), get(&conn, "b"));
        for err in [a.unwrap_err(), b.unwrap_err()] {
            assert!(err.is_timeout(), "{err}");
        }
        assert_eq!(*fake.writes.lock().unwrap(), [2]);
    }

    #[tokio::test]
    async fn commands_whose_callers_gave_up_are_not_sent() {
        let fake = Fake::default();
        let conn = Batched::new(fake.clone(), Duration::from_secs(5));
        let mut abandoned = conn.clone();
        let cmd = redis::cmd("GET").arg("gone").clone();
        {
            // Polled once (queued), then dropped before the flush runs.
            let mut call = abandoned.req_packed_command(&cmd);
            let ready = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx).is_ready())).await;
            assert!(!ready, "a command waits for its flush");
        }
        assert_eq!(get(&conn, "kept").await.unwrap(), Value::BulkString(b"kept".to_vec()));
        assert_eq!(
            fake.sent.load(Ordering::SeqCst),
            1,
            "only the command still awaited is sent"
        );
    }
}
