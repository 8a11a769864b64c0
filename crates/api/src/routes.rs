//! The table of mounted routes.
//!
//! axum cannot list the routes of a router, yet the OpenAPI spec must name
//! every one of them. So every surface mounts its routes through
//! [`Routes`], which records each (method, path) it mounts: the table is
//! made by the very calls that mount, and the spec test compares it with
//! the spec in both directions (`crates/api/tests/it/openapi_spec.rs`).
//! Mount routes only through this type.

use std::convert::Infallible;

use axum::{
    Router,
    extract::Request,
    handler::Handler,
    http::Method,
    response::IntoResponse,
    routing::{MethodFilter, Route, on},
};
use tower::{Layer, Service};

/// One mounted route: an HTTP method and an axum path (`{name}` for a
/// path parameter, as OpenAPI writes it too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MountedRoute {
    pub method: Method,
    pub path: String,
}

impl std::fmt::Display for MountedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A router that remembers what it mounts.
pub(crate) struct Routes<S> {
    router: Router<S>,
    table: Vec<MountedRoute>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub(crate) fn get<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.on(Method::GET, MethodFilter::GET, path, handler)
    }

    pub(crate) fn post<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.on(Method::POST, MethodFilter::POST, path, handler)
    }

    pub(crate) fn put<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.on(Method::PUT, MethodFilter::PUT, path, handler)
    }

    pub(crate) fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.on(Method::DELETE, MethodFilter::DELETE, path, handler)
    }

    /// Mounts `handler` for `method` (whose filter is `filter`) at `path`
    /// and records the pair. axum merges handlers of different methods on
    /// one path.
    fn on<H: Handler<T, S>, T: 'static>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(MountedRoute {
            method,
            path: path.to_owned(),
        });
        self
    }

    /// Adds the routes of `other`.
    pub(crate) fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Wraps every route mounted so far in `layer` (as
    /// [`Router::route_layer`]); used to give some routes of a surface a
    /// middleware of their own before they are merged with the others.
    pub(crate) fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.route_layer(layer);
        self
    }

    /// The routes as they were mounted.
    pub(crate) fn table(&self) -> &[MountedRoute] {
        &self.table
    }

    /// The router, for its state, fallbacks and layers.
    pub(crate) fn into_router(self) -> Router<S> {
        self.router
    }
}
