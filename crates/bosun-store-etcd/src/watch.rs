//! Store watches on top of etcd watches: one etcd watch (with `prev_kv`) per store watch,
//! its events regrouped into one batch per revision, and the etcd watch re-opened from the
//! last delivered revision when the connection to a member breaks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bosun_store::{prefix_end, Error, Event, EventType, KeyValue, Result, Revision, WatchStream};
use bytes::Bytes;
use etcd_client::proto::PbWatchResponse;
use etcd_client::WatchOptions;

use crate::{range_start, Inner, MAX_MESSAGE, REQUEST_TIMEOUT};

/// etcd's event type numbers (mvccpb.Event.EventType).
const ETCD_PUT: i32 = 0;
const ETCD_DELETE: i32 = 1;

/// How often a broken watch is re-opened before the stream gives up, and the first pause
/// (doubled at each attempt): about 6 s in all, enough for a member restart or a leader
/// change, short enough that callers soon learn the cluster is gone.
const RESUME_ATTEMPTS: u32 = 6;
const RESUME_FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Opens a watch of `prefix` (relative to the store prefix) delivering revisions > `after`.
pub(crate) async fn start(inner: Arc<Inner>, prefix: &str, after: Revision) -> Result<WatchStream> {
    let full = format!("{}{prefix}", inner.prefix);
    let end = prefix_end(&full);
    let key = range_start(full.into_bytes());
    let stream = open(&inner, prefix, &key, &end, after).await?;
    let state = State {
        inner,
        prefix: prefix.to_string(),
        key,
        end,
        stream: Some(stream),
        last: after,
        pending: VecDeque::new(),
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(
        state,
        |mut state| async move { state.next().await.map(|item| (item, state)) },
    )))
}

/// Creates the etcd watch and waits for etcd to confirm it.
async fn open(
    inner: &Inner,
    prefix: &str,
    key: &[u8],
    end: &[u8],
    after: Revision,
) -> Result<etcd_client::WatchStream> {
    let op = "watch";
    let mut client = inner
        .client
        .watch_client()
        .max_decoding_message_size(MAX_MESSAGE);
    let options = WatchOptions::new()
        .with_range(end.to_vec())
        .with_prev_key()
        .with_start_revision(after + 1);
    let mut stream = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        client.watch(key.to_vec(), Some(options)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(inner.backend(op, prefix, &e)),
        Err(_) => return Err(no_answer(inner, prefix)),
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, stream.message()).await {
        Ok(Ok(Some(resp))) => {
            let resp = resp.0;
            if resp.canceled {
                return Err(cancelled(inner, prefix, after, &resp));
            }
            if !resp.created {
                return Err(Error::Backend(format!(
                    "etcd watch of key {prefix:?} at {}: first answer is not a creation",
                    inner.endpoints
                )));
            }
            Ok(stream)
        }
        Ok(Ok(None)) => Err(Error::Backend(format!(
            "etcd watch of key {prefix:?} at {}: stream closed before the watch was created",
            inner.endpoints
        ))),
        Ok(Err(e)) => Err(inner.backend(op, prefix, &e)),
        Err(_) => Err(no_answer(inner, prefix)),
    }
}

fn no_answer(inner: &Inner, prefix: &str) -> Error {
    Error::Backend(format!(
        "etcd watch of key {prefix:?} at {}: no answer within {REQUEST_TIMEOUT:?}",
        inner.endpoints
    ))
}

/// The error for a watch etcd cancelled; `last` is the last revision delivered.
fn cancelled(inner: &Inner, prefix: &str, last: Revision, resp: &PbWatchResponse) -> Error {
    if resp.compact_revision > 0 {
        inner.saw_compacted(resp.compact_revision);
        Error::Compacted {
            requested: last,
            compacted: resp.compact_revision,
        }
    } else {
        Error::Backend(format!(
            "etcd watch of key {prefix:?} at {} was cancelled: {}",
            inner.endpoints,
            if resp.cancel_reason.is_empty() {
                "no reason given"
            } else {
                &resp.cancel_reason
            }
        ))
    }
}

struct State {
    inner: Arc<Inner>,
    /// The watched prefix as the caller named it, for error messages.
    prefix: String,
    key: Vec<u8>,
    end: Vec<u8>,
    /// `None` after the connection broke, until it is re-opened.
    stream: Option<etcd_client::WatchStream>,
    /// The last revision queued for delivery: a re-opened watch starts after it.
    last: Revision,
    pending: VecDeque<Vec<Event>>,
    /// An error was delivered; the stream ends.
    done: bool,
}

impl State {
    async fn next(&mut self) -> Option<Result<Vec<Event>>> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Some(Ok(batch));
            }
            if self.done {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                if let Err(e) = self.resume().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(resp)) => {
                    let resp = resp.0;
                    if resp.canceled {
                        self.done = true;
                        return Some(Err(cancelled(&self.inner, &self.prefix, self.last, &resp)));
                    }
                    if let Err(e) = self.absorb(resp) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Ok(None) => {
                    tracing::warn!(prefix = %self.prefix, endpoints = %self.inner.endpoints, "etcd closed a watch stream; re-opening it");
                    self.stream = None;
                }
                Err(e) => {
                    tracing::warn!(prefix = %self.prefix, endpoints = %self.inner.endpoints, error = %e, "etcd watch stream broke; re-opening it");
                    self.stream = None;
                }
            }
        }
    }

    /// Re-opens the etcd watch after the last delivered revision, with a few pauses.
    async fn resume(&mut self) -> Result<()> {
        let mut pause = RESUME_FIRST_PAUSE;
        let mut last_error = None;
        for _ in 0..RESUME_ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
            match open(&self.inner, &self.prefix, &self.key, &self.end, self.last).await {
                Ok(stream) => {
                    self.stream = Some(stream);
                    return Ok(());
                }
                // History was lost meanwhile: retrying cannot help.
                Err(e @ Error::Compacted { .. }) => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(Error::Backend(format!(
            "etcd watch of key {:?} at {} broke and could not be re-opened after revision {}: {}",
            self.prefix,
            self.inner.endpoints,
            self.last,
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// Turns one etcd response into batches, one per revision.
    fn absorb(&mut self, resp: PbWatchResponse) -> Result<()> {
        for raw in resp.events {
            let Some(kv) = raw.kv else {
                return Err(self.malformed("an event without key-value"));
            };
            let revision = kv.mod_revision;
            // A re-opened watch starts after `last`; anything older was delivered already.
            if revision <= self.last {
                continue;
            }
            let prev = raw.prev_kv.map(|p| self.inner.convert(p)).transpose()?;
            let event = match raw.r#type {
                ETCD_PUT => {
                    let kv = self.inner.convert(kv)?;
                    let event_type = if kv.create_revision == kv.mod_revision {
                        EventType::Create
                    } else {
                        EventType::Update
                    };
                    Event {
                        event_type,
                        revision,
                        kv,
                        prev,
                    }
                }
                ETCD_DELETE => {
                    let key = self.inner.strip(&kv.key)?;
                    let (value, create_revision) = match &prev {
                        Some(p) => (p.value.clone(), p.create_revision),
                        None => (Bytes::new(), 0),
                    };
                    Event {
                        event_type: EventType::Delete,
                        revision,
                        kv: KeyValue {
                            key,
                            value,
                            create_revision,
                            mod_revision: revision,
                        },
                        prev,
                    }
                }
                other => return Err(self.malformed(&format!("an event of unknown type {other}"))),
            };
            match self.pending.back_mut() {
                Some(batch) if batch.last().map(|e| e.revision) == Some(revision) => {
                    batch.push(event)
                }
                _ => self.pending.push_back(vec![event]),
            }
            self.last = revision;
        }
        Ok(())
    }

    fn malformed(&self, what: &str) -> Error {
        Error::Backend(format!(
            "etcd watch of key {:?} at {} sent {what}",
            self.prefix, self.inner.endpoints
        ))
    }
}
