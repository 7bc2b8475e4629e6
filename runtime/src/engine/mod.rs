//! Running agents: the run loop, node execution, state merge, and the run's report.

mod agent;
mod component_check;
mod error;
mod events;
mod parsed_cache;
mod policy;
mod precompile;
mod report;
mod run;
mod state;

pub use agent::{
    Agent, AgentLoadError, ComponentEvent, Interrupts, ProvidedComponents, ReadAgent, load_agent,
    load_agent_for_replay, load_agent_with, read_agent,
};
pub use component_check::{load_checked, load_with_warnings};
pub use error::RunError;
pub use events::EventSink;
pub use policy::NodePolicy;
#[cfg(feature = "compiler")]
pub use precompile::{PrecompileError, PrecompileOptions, PrecompileReport, precompile_agent};
pub use precompile::{default_out as default_precompiled_dir, precompile_command, source_key};
pub use report::{RunReport, UsageSnapshot};
pub use run::{DEFAULT_MAX_STEPS, Durability, PARALLEL_RESULTS, RunOptions, Runtime};
pub use state::merge_update;
