//! The attribute names Kettle's spans carry: OpenTelemetry's semantic conventions from
//! `opentelemetry-semantic-conventions` (the GenAI ones are experimental conventions), and the
//! few names Kettle emits that the crate's 0.31 release does not have yet.

pub use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, GEN_AI_AGENT_NAME, GEN_AI_CONVERSATION_ID, GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MAX_TOKENS, GEN_AI_REQUEST_MODEL, GEN_AI_REQUEST_SEED,
    GEN_AI_REQUEST_STOP_SEQUENCES, GEN_AI_REQUEST_TEMPERATURE, GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS, GEN_AI_RESPONSE_ID, GEN_AI_RESPONSE_MODEL, GEN_AI_SYSTEM,
    GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS, HTTP_RESPONSE_STATUS_CODE,
    SERVER_ADDRESS, SERVER_PORT,
};

// GenAI conventions newer than semantic-conventions 0.31 (semconv 1.37 and later).

/// The provider's name; supersedes `gen_ai.system`, which Kettle still sets for older backends.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The request's messages as JSON, when content capture is on.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// The answer's messages as JSON, when content capture is on.
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// The tools offered to the model as JSON, when content capture is on.
pub const GEN_AI_TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";

// Not (yet) in any semantic-conventions release: Kettle's names in the `gen_ai.` style.

/// Whether the call was streamed.
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
/// Seconds from the call's start to the first streamed item.
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";

// OpenInference's names (Phoenix, Arize, Langfuse read them), not OpenTelemetry conventions.

pub const INPUT_VALUE: &str = "input.value";
pub const INPUT_MIME_TYPE: &str = "input.mime_type";
pub const OUTPUT_VALUE: &str = "output.value";
pub const OUTPUT_MIME_TYPE: &str = "output.mime_type";
