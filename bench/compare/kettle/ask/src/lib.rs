//! Asks the LLM `{config.prefix}{state[config.from]}` and stores the answer under `config.to`.

use kettle_guest::{Context, NodeError, Value, json, llm};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let field = |key: &str| {
        ctx.config
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| NodeError::invalid_input(format!("config.{key} must be text")))
    };
    let (prefix, from, to) = (field("prefix")?, field("from")?, field("to")?);
    let input = state.get(from).and_then(Value::as_str).unwrap_or_default();
    let answer = llm::ask(format!("{prefix}{input}"))?;
    Ok(json!({ to: answer }))
}

kettle_guest::export_node!(run);
