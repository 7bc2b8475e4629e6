//! The agent file: YAML → typed, validated [`AgentSpec`], with errors that carry file, line and column.

mod error;
#[macro_use]
mod flow;
mod host_pattern;
mod inline;
mod limits;
mod llm_settings;
mod load;
mod locate;
mod model;
pub(crate) mod place;
mod shell_providers;
mod tea_settings;
mod tracing_settings;
mod typing;
mod validate;
mod validate_flow;
mod wording;
mod yaml;

pub use error::{SpecError, SpecErrors};
pub use flow::{
    ActionView, EdgeCondition, ExpressionRun, FanIn, Goto, GotoRule, NodeAction, Output, StepSpec,
    When,
};
pub use host_pattern::HostPattern;
pub use inline::{ISOLATIONS, InlineCode, inline_code};
pub use limits::{MAX_LOG_LINE_BYTES, NodeLimits, RunLimits, raise_hint};
pub use llm_settings::{LlmSettings, PROVIDER_TYPES, ProviderSettings};
pub use load::{
    Findings, LoadedSpec, PathRef, TREE_FORMAT, check, from_tree, from_tree_json, load_file,
    parse_file, parse_str, parse_tree, read_source, validate,
};
pub use model::{
    AgentSpec, BudgetSpec, CheckpointSettings, END, EdgeSpec, FsAccess, FsGrantSpec, LimitsSpec,
    LlmGrantSpec, NodeSpec, ParallelSettings, PermissionsSpec, RetrySpec, START, Settings,
    TracingSettings,
};
pub use shell_providers::{
    BUILTIN_SHELL_PROVIDERS, SHELL, ShellProviderSettings, command_line as shell_command_line,
};
pub use tea_settings::{TEA_SECTIONS, TeaNote};
pub use tracing_settings::{
    EXPORTERS, ExporterList, LangfuseSettings, OpikSettings, TraceConventions,
};
pub use validate::{secret_variables, uses_file_action};
