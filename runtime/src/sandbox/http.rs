//! Outbound `wasi:http` requests of a node: each one, redirects included (a guest follows a
//! redirect with a new request), is checked against the node's allow-list before it is sent.

use super::permissions::HostPattern;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

type IoFuture = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<
    dyn std::future::Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>>
        + Send,
>;

/// The allow-list of one node execution.
pub struct HttpPolicy {
    pub node: String,
    pub allowed: Arc<Vec<HostPattern>>,
}

impl HttpPolicy {
    fn permits(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else { return false };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        self.allowed.iter().any(|p| p.allows(scheme, host, port))
    }
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        if !self.permits(request.uri()) {
            tracing::warn!(
                target: "kettle::node",
                node = %self.node,
                uri = %request.uri(),
                "HTTP request refused: the host is not in the node's permissions.http"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}
