//! Running agents: the run loop, node execution, state merge, and the run's report.

mod agent;
mod component_check;
mod dynamic;
mod error;
mod events;
mod flow;
mod llm_node;
mod policy;
mod report;
mod run;
mod state;
mod steps;

pub use agent::{Agent, AgentLoadError, ComponentEvent, load_agent};
pub use component_check::{check_components, check_files, check_granted_folders, load_checked};
pub use error::RunError;
pub use events::EventSink;
pub use flow::PARALLEL_RESULTS;
pub use policy::NodePolicy;
pub use report::{RunReport, UsageSnapshot};
pub use run::{DEFAULT_MAX_STEPS, RunOptions, Runtime};
pub use state::merge_update;
