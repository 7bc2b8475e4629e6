//! Running agents: the run loop, node execution, state merge, and the run's report.

mod agent;
mod error;
mod llm_node;
mod policy;
mod report;
mod run;
mod state;

pub use agent::{Agent, AgentLoadError, ComponentEvent, load_agent};
pub use error::RunError;
pub use policy::NodePolicy;
pub use report::{RunReport, UsageSnapshot};
pub use run::{RunOptions, Runtime};
pub use state::merge_update;
