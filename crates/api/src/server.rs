//! Serving a router on a TCP listener with limits that a slow or greedy
//! client cannot get around.
//!
//! `axum::serve` reads request headers for as long as the client likes,
//! accepts every connection and waits for ever for in-flight connections at
//! shutdown. This loop (HTTP/1.1 through hyper, as axum's) adds:
//!
//! - a header-read timeout: a connection that has not sent a complete
//!   request head this long after the server started waiting for one
//!   (after connecting, or after the previous response on a keep-alive
//!   connection) is closed. That also bounds idle keep-alive connections;
//! - a connection limit: at most `max_connections` connections are served at
//!   once; the next is not accepted (it waits in the kernel's backlog) until
//!   one closes;
//! - a bounded graceful shutdown: when `shutdown` resolves, no connection is
//!   accepted, idle connections close, in-flight requests finish, and
//!   whatever is still open after `shutdown_grace` is closed.
//!
//! The request timeout is a layer of the router ([`crate::HttpSettings`]),
//! so that its 408 is logged with the request's id like any answer.
//! Each request carries the peer's address as axum's
//! `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info` gives.

use std::{future::Future, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};
use tower::ServiceExt as _;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// How long a connection may take to send a complete request head.
    pub header_read_timeout: Duration,
    /// Connections served at once (at least 1).
    pub max_connections: u32,
    /// How long in-flight connections may run on after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Where the connections are in the server's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in flight, then close.
    Draining,
    /// Close now.
    Closing,
}

/// Serves `router` on `listener` until `shutdown` resolves and the
/// connections have drained (or the grace period is over).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let all_permits = limits.max_connections.max(1);
    let max_connections = all_permits as usize;
    let slots = Arc::new(Semaphore::new(max_connections));
    let (phase, phase_rx) = watch::channel(Phase::Serving);
    let mut shutdown = pin!(shutdown);
    let mut full = false;
    loop {
        if slots.available_permits() == 0 && !full {
            tracing::warn!(
                max_connections,
                "server.max_connections reached: new connections wait until one closes"
            );
        }
        full = slots.available_permits() == 0;
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            phase_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let open = max_connections - slots.available_permits();
    tracing::info!(open, "no longer accepting connections; finishing in-flight requests");
    phase.send_replace(Phase::Draining);
    // Every connection holds a permit until it is closed, so holding all
    // the permits means every connection is closed.
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all_permits))
        .await
        .is_err()
    {
        let open = max_connections - slots.available_permits();
        tracing::warn!(
            open,
            "closing the connections still open after server.shutdown_grace_seconds"
        );
        phase.send_replace(Phase::Closing);
        let _closed = slots.acquire_many(all_permits).await;
    }
    Ok(())
}

/// Serves one connection, holding `_permit` (its slot) until it is closed.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServerLimits,
    mut phase: watch::Receiver<Phase>,
    _permit: OwnedSemaphorePermit,
) {
    let service = router.map_request(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
    if *phase.borrow_and_update() != Phase::Serving {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    if error.is_timeout() {
                        tracing::info!("closed a connection that sent no complete request head within server.header_read_timeout_seconds");
                    } else {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                return;
            }
            changed = phase.changed() => match changed.map(|()| *phase.borrow_and_update()) {
                Ok(Phase::Serving) => {}
                Ok(Phase::Draining) => connection.as_mut().graceful_shutdown(),
                // Dropping the connection closes its socket.
                Ok(Phase::Closing) | Err(_) => return,
            },
        }
    }
}

/// As `axum::serve` (and hyper 0.14's server) do: errors of one connection
/// are skipped; others (such as running out of file descriptors) are
/// logged and retried after a second, when some connections have closed.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
