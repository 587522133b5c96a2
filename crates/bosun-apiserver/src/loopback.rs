//! The in-process loopback transport: a `tower::Service` that hands each request of a client
//! running inside the server's process (scheduler, controllers, `bosun up`'s agent) straight to
//! the API router, instead of encrypting it, framing it on a TCP socket to 127.0.0.1 and
//! parsing it back in the same process.
//!
//! Like upstream's loopback client (`system:apiserver` in `system:masters`, authenticated by a
//! token that only the process knows), requests through it carry a fixed identity; here no
//! token exists at all: the identity is set on the request by this module, after the network
//! listener, so no request that arrives over the network can obtain it. Each request gets the
//! same extensions as one from [`crate::tls::serve`] (the [`UserInfo`] and a `ConnectInfo`
//! address), so handlers, metrics, watch and streaming behave as over the network. Request and
//! response bodies stream both ways; a watch's events arrive as the router produces them.
//!
//! HTTP upgrades (exec, attach, port-forward) are not carried: no in-process loop uses them.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::watch;

use crate::tls::{UserInfo, ALL_AUTHENTICATED, MASTERS_GROUP};

/// Upstream's `user.APIServerUser`: the identity of the API server's own loopback client.
pub const LOOPBACK_USER: &str = "system:apiserver";
/// The peer address handlers see for loopback requests (no socket exists; port 0 says so).
pub const LOOPBACK_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The type-erased error of a response body (what `http_body` users expect).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the loopback transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server is stopping or stopped: the in-process equivalent of a refused connection.
    #[error("the API server is stopped; loopback request to {path} refused")]
    Stopped { path: String },
    /// The request's handler task ended without a response (it panicked).
    #[error("handling loopback request to {path} failed: {reason}")]
    Handler { path: String, reason: String },
    /// The server stopped while a response was still streaming (e.g. a log follow): the
    /// in-process equivalent of a connection closed after the shutdown grace period.
    #[error("the API server stopped while the response was streaming")]
    Cut,
}

/// Where the server is in its life, as the loopback transport sees it.
///
/// `Open` → `Draining` when [`crate::Server::stop`] begins (new requests are refused, as the
/// listener stops accepting) → `Closed` once the network listener's grace period is over (open
/// response bodies end with [`Error::Cut`], as open connections are dropped then). Dropping
/// the server without `stop` closes it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Draining,
    Closed,
}

/// The server's end: moves the transport through its [`State`]s.
#[derive(Debug)]
pub struct Control {
    state: watch::Sender<State>,
}

impl Control {
    pub fn set(&self, state: State) {
        self.state.send_replace(state);
    }
}

/// The in-process transport to one router. Cheap to clone; every clone shares the state.
#[derive(Clone)]
pub struct Loopback {
    app: Router,
    user: UserInfo,
    state: watch::Receiver<State>,
}

impl std::fmt::Debug for Loopback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loopback")
            .field("user", &self.user.name)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

/// The identity of loopback requests: upstream's loopback user (in `system:masters`), with the `uid` a fresh UUID
/// per server start as upstream's (it is never written down anywhere).
pub fn loopback_user() -> UserInfo {
    UserInfo {
        name: LOOPBACK_USER.to_owned(),
        groups: vec![ALL_AUTHENTICATED.to_owned(), MASTERS_GROUP.to_owned()],
        uid: uuid::Uuid::new_v4().to_string(),
    }
}

impl Loopback {
    /// A transport to `app` with the loopback identity, and the control that closes it.
    pub fn new(app: Router) -> (Loopback, Control) {
        let (tx, rx) = watch::channel(State::Open);
        let loopback = Loopback {
            app,
            user: loopback_user(),
            state: rx,
        };
        (loopback, Control { state: tx })
    }

    /// The same transport with requests made as `user` (e.g. `bosun up`'s agent as its node,
    /// as its bootstrap token would make it over the network). The caller chooses the user in
    /// code; nothing in a request can.
    pub fn with_user(mut self, user: UserInfo) -> Loopback {
        self.user = user;
        self
    }

    /// The user requests through this transport are made as.
    pub fn user(&self) -> &UserInfo {
        &self.user
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<LoopbackBody>, Error>> + Send + 'static>>;

impl<B> tower::Service<Request<B>> for Loopback
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<LoopbackBody>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        // A dropped sender (the server dropped without `stop`) is closed.
        let open = *self.state.borrow() == State::Open && self.state.has_changed().is_ok();
        let app = self.app.clone();
        let user = self.user.clone();
        let state = self.state.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            if !open {
                return Err(Error::Stopped {
                    path: parts.uri.path().to_owned(),
                });
            }
            // The identity is this transport's; a credential in the request means nothing here
            // and must not reach a handler (the network path removes a used token too).
            parts.headers.remove(AUTHORIZATION);
            let path = parts.uri.path().to_owned();
            let req = Request::from_parts(parts, Body::new(body));
            // A task of its own, as a request over the network gets on its connection: the
            // server's work is spread over the runtime's threads instead of running inside
            // one client task (a controller awaiting a batch of creates together), and a
            // client that gives up on a response does not cut a write off halfway.
            let handling = tokio::spawn(crate::tls::dispatch(app, req, user, LOOPBACK_PEER));
            match handling.await {
                Ok(resp) => Ok(resp.map(|body| LoopbackBody::new(body, state))),
                Err(e) => Err(Error::Handler {
                    path,
                    reason: e.to_string(),
                }),
            }
        })
    }
}

/// A response body that streams the router's body and ends with [`Error::Cut`] when the
/// server closes.
pub struct LoopbackBody {
    inner: Body,
    closed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl LoopbackBody {
    fn new(inner: Body, mut state: watch::Receiver<State>) -> Self {
        let closed = Box::pin(async move {
            // A dropped sender (the server dropped without `stop`) closes as well.
            let _ = state.wait_for(|s| *s == State::Closed).await;
        });
        LoopbackBody {
            inner,
            closed: Some(closed),
        }
    }
}

impl HttpBody for LoopbackBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(closed) = this.closed.as_mut() else {
            // Cut already reported: the stream is over.
            return Poll::Ready(None);
        };
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if closed.as_mut().poll(cx).is_ready() {
                    this.closed = None;
                    return Poll::Ready(Some(Err(Box::new(Error::Cut))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.closed.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
