//! The agent file: YAML → typed, validated [`AgentSpec`], with errors that carry file, line and column.

mod error;
mod llm_settings;
mod load;
mod locate;
mod model;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use llm_settings::{PROVIDER_TYPES, ProviderSettings};
pub use load::{LoadedSpec, load_file, parse_file, parse_str, validate};
pub use model::{
    AgentSpec, END, EdgeSpec, LlmSettings, NodeSpec, START, Settings, TracingSettings,
};
