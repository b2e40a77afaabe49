//! The HTTP server loop, with what a public address needs and `axum::serve`
//! does not offer: hyper's HTTP/1 connection builder with a header-read
//! timeout (which also ends idle kept-alive connections), a cap on open
//! connections (one over it is answered 503 and closed at once, never left
//! hanging), the client's address for the handlers (`ConnectInfo`), and a
//! shutdown that asks every connection to finish and closes what is left
//! after [`DRAIN`], whatever the clients do. Request bodies get their own
//! timeout in the router (`api::app`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// What a client may take of the server: time, connections, streams, reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_event_streams: usize,
    pub query_timeout: Duration,
}

impl Default for Limits {
    /// The settings' declared defaults.
    fn default() -> Self {
        use crate::settings::default_of;
        Limits {
            header_timeout: Duration::from_secs(default_of("header_timeout_secs")),
            body_timeout: Duration::from_secs(default_of("body_timeout_secs")),
            max_connections: default_of("max_connections"),
            max_event_streams: default_of("max_event_streams"),
            query_timeout: Duration::from_millis(default_of("query_timeout_ms")),
        }
    }
}

/// How long shutdown waits for open connections before closing them.
pub const DRAIN: Duration = Duration::from_secs(4);

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: keep serving what is
                    // open, and try again shortly.
                    crate::ratelimit::warn_limited(
                        "http-accept",
                        &format!("cannot accept a connection: {e}"),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                tower::ServiceExt::oneshot(router.clone(), req)
            });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_sec = DRAIN.as_secs(),
            "some connections did not finish in time after shutdown began; closing them"
        );
    }
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream, cap: usize) {
    let body = format!(
        "{{\"error\":\"meshscope is serving its maximum of {cap} connections; try again shortly\"}}"
    );
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    crate::ratelimit::warn_limited(
        "http-connections-full",
        &format!("refused a connection: {cap} are open (--max-connections)"),
    );
}

/// The client's address, as the serve loop recorded it (loopback when a
/// request did not come through it, as in `oneshot` tests).
pub(crate) fn peer_of(req_ext: Option<&ConnectInfo<SocketAddr>>) -> std::net::IpAddr {
    req_ext.map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |c| {
        c.0.ip()
    })
}
