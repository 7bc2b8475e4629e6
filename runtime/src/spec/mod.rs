//! The agent file: YAML → typed, validated [`AgentSpec`], with errors that carry file, line and column.

mod error;
mod load;
mod locate;
mod model;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use load::{LoadedSpec, load_file, load_str};
pub use model::{
    AgentSpec, EdgeSpec, LlmSettings, NodeSpec, Settings, TracingSettings, END, START,
};
