//! The data of one node execution's `Store`: the WASI context (nothing granted), the resource
//! table, and each capability's per-node state.

use crate::capabilities::{LlmCtx, LogCtx, NodeLlm, NodeTrace, TraceCtx};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bytes of stdout / stderr kept per node execution; writes past it fail in the guest.
const OUTPUT_CAPTURE_BYTES: usize = 64 * 1024;
const DEFAULT_MEMORY_BYTES: usize = 256 << 20;

pub struct NodeHost {
    wasi: WasiCtx,
    table: ResourceTable,
    run_id: String,
    node_name: String,
    pub(crate) trace: NodeTrace,
    llm: NodeLlm,
    pub(crate) limits: StoreLimits,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl NodeHost {
    pub fn new(run_id: String, node_name: String, trace: NodeTrace, llm: NodeLlm) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        // No preopened folders, no environment, no arguments, no network: nothing is granted.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            run_id,
            node_name,
            trace,
            llm,
            limits: StoreLimitsBuilder::new()
                .memory_size(DEFAULT_MEMORY_BYTES)
                .build(),
            stdout,
            stderr,
        }
    }

    pub fn trace_ctx(&mut self) -> TraceCtx<'_> {
        TraceCtx {
            state: &mut self.trace,
            table: &mut self.table,
        }
    }

    pub fn llm_ctx(&mut self) -> LlmCtx<'_> {
        LlmCtx {
            llm: &self.llm,
            trace: &self.trace,
            table: &mut self.table,
        }
    }

    pub fn log_ctx(&mut self) -> LogCtx<'_> {
        LogCtx {
            run_id: &self.run_id,
            node: &self.node_name,
            trace: &self.trace,
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
