//! The data of one node execution's `Store`: the WASI context built from the node's grants
//! (nothing by default), the resource table, limits, and the capabilities' per-node states
//! (which it holds without looking inside).

use super::http::HttpPolicy;
use super::limits::NodeLimiter;
use super::output::CapturedOutput;
use super::permissions::Grants;
use crate::capabilities::{CapabilitiesMut, CapabilityView, NodeCapabilities};
use crate::spec::NodeLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of stdout / stderr kept per node execution; bytes past it are dropped and counted.
pub(crate) const OUTPUT_CAPTURE_BYTES: usize = 64 * 1024;

pub struct NodeHost {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    pub(crate) capabilities: Box<NodeCapabilities>,
    pub(crate) limiter: NodeLimiter,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl NodeHost {
    /// A host granting exactly `grants`. Fails when a granted folder cannot be opened.
    pub fn new(
        node_name: String,
        capabilities: Box<NodeCapabilities>,
        limits: &NodeLimits,
        grants: &Grants,
    ) -> Result<Self, String> {
        let stdout = CapturedOutput::new(OUTPUT_CAPTURE_BYTES);
        let stderr = CapturedOutput::new(OUTPUT_CAPTURE_BYTES);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        for (name, value) in &grants.env {
            builder.env(name, value);
        }
        for grant in &grants.fs {
            let perms = if grant.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&grant.host_path, &grant.guest_path, perms)
                .map_err(|e| {
                    format!(
                        "cannot open granted folder {}: {e:#}",
                        grant.host_path.display()
                    )
                })?;
        }
        Ok(Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            http_policy: HttpPolicy {
                node: node_name,
                allowed: grants.http.clone(),
            },
            capabilities,
            limiter: NodeLimiter::new(limits.memory_bytes()),
            stdout,
            stderr,
        })
    }
}

impl NodeHost {
    /// The node this execution runs.
    pub(crate) fn node_name(&self) -> &str {
        &self.http_policy.node
    }
}

impl CapabilityView for NodeHost {
    fn capabilities(&mut self) -> CapabilitiesMut<'_> {
        CapabilitiesMut {
            states: &mut self.capabilities,
            table: &mut self.table,
        }
    }
}

impl WasiView for NodeHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for NodeHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}
