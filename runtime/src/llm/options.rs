//! The call options each provider's API cannot carry, so that an agent asking for one is
//! told at load time (and a call made anyway is refused) instead of the option being dropped
//! without a word. The wire modules refuse the same options when they build a request.

use serde_json::Value;

/// Why provider `name` (of type `system`, as `gen_ai.provider.name`) cannot take option `key`
/// with `value`; `None` when it can, or when `value` is a template known only at run time.
pub fn refusal(name: &str, system: &str, key: &str, value: &Value) -> Option<String> {
    if value.is_null() || value.as_str().is_some_and(|s| s.contains("{{")) {
        return None;
    }
    match (system, key) {
        ("anthropic", "seed") => Some(format!(
            "provider `{name}` (anthropic) takes no `seed`: the Messages API has none; remove `seed`"
        )),
        ("anthropic", "response_format") => {
            let kind = match value {
                Value::String(s) => s.as_str(),
                _ => value.get("type").and_then(Value::as_str).unwrap_or(""),
            };
            (kind != "json_schema" && kind != "text").then(|| {
                format!(
                    "provider `{name}` (anthropic) has JSON output only with a schema: give `response_format: {{type: json_schema, json_schema: {{name, schema}}}}`"
                )
            })
        }
        ("ollama", "tool_choice") => {
            let choice = value.as_str().unwrap_or("");
            (choice != "auto" && choice != "none").then(|| {
                format!(
                    "provider `{name}` (ollama) takes no `tool_choice: {choice}`: Ollama's chat API cannot force a tool; use `auto` or `none`"
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_provider() {
        assert!(refusal("claude", "anthropic", "seed", &json!(4)).is_some());
        assert!(refusal("gpt", "openai", "seed", &json!(4)).is_none());
        assert!(refusal("claude", "anthropic", "response_format", &json!("json")).is_some());
        assert!(
            refusal(
                "claude",
                "anthropic",
                "response_format",
                &json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
            )
            .is_none()
        );
        assert!(refusal("local", "ollama", "tool_choice", &json!("required")).is_some());
        assert!(refusal("local", "ollama", "tool_choice", &json!("auto")).is_none());
        assert!(refusal("claude", "anthropic", "seed", &json!("{{ state.seed }}")).is_none());
    }
}
