//! The agent file: YAML → typed, validated [`AgentSpec`], with errors that carry file, line and column.

mod error;
mod load;
mod locate;
mod model;
mod tracing_settings;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use load::{LoadedSpec, load_file, parse_file, parse_str, validate};
pub use model::{
    AgentSpec, END, EdgeSpec, LlmSettings, NodeSpec, START, Settings, TracingSettings,
};
pub use tracing_settings::{EXPORTERS, ExporterList, LangfuseSettings, OpikSettings};
