//! Jinja templates over `state` and `variables` (minijinja). Undefined values are errors that
//! name the missing key, never silent empty strings.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use std::sync::LazyLock;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
});

/// Checks the syntax of a template.
pub fn check(source: &str) -> Result<(), String> {
    ENV.template_from_str(source)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// Every string inside `value`, with its path (for error locations).
pub fn strings<'a>(value: &'a Value, path: &str) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    collect(value, path.to_string(), &mut out);
    out
}

fn collect<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// Renders every string in `value` against `context`. A string that is one `{{ expression }}`
/// and nothing else keeps the expression's type (a list stays a list).
pub fn render_value(value: &Value, context: &Value) -> Result<Value, String> {
    match value {
        Value::String(s) => render_string(s, context),
        Value::Array(items) => items
            .iter()
            .map(|v| render_value(v, context))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| render_value(v, context).map(|v| (k.clone(), v)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn render_string(source: &str, context: &Value) -> Result<Value, String> {
    if !source.contains("{{") && !source.contains("{%") {
        return Ok(Value::String(source.to_string()));
    }
    let template = ENV.template_from_str(source).map_err(|e| describe(&e))?;
    let trimmed = source.trim();
    let single = trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed.matches("{{").count() == 1
        && trimmed.matches("}}").count() == 1
        && !trimmed.contains("{%");
    let result = if single {
        let expression = trimmed[2..trimmed.len() - 2].trim();
        ENV.compile_expression(expression)
            .and_then(|e| e.eval(context))
            .map(|v| serde_json::to_value(&v).unwrap_or(Value::Null))
    } else {
        template.render(context).map(Value::String)
    };
    result.map_err(|e| {
        if e.kind() == minijinja::ErrorKind::UndefinedError
            && let Some(missing) = first_missing(&template, context)
        {
            return format!("`{missing}` is not defined");
        }
        describe(&e)
    })
}

/// The first variable path the template reads that the context does not have.
fn first_missing(template: &minijinja::Template<'_, '_>, context: &Value) -> Option<String> {
    let mut paths: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    paths.sort();
    paths.into_iter().find(|path| {
        let mut current = context;
        for part in path.split('.') {
            match current.get(part) {
                Some(next) => current = next,
                None => return true,
            }
        }
        false
    })
}

fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{detail} ({})", error.kind()),
        None => error.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_text_and_keeps_types_of_single_expressions() {
        let ctx = json!({"state": {"name": "kettle", "items": [1, 2]}});
        assert_eq!(
            render_value(&json!("hi {{ state.name }}!"), &ctx).unwrap(),
            json!("hi kettle!")
        );
        assert_eq!(
            render_value(&json!("{{ state.items }}"), &ctx).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            render_value(&json!({"a": ["{{ state.name }}"]}), &ctx).unwrap(),
            json!({"a": ["kettle"]})
        );
    }

    #[test]
    fn missing_key_is_named() {
        let ctx = json!({"state": {"name": "kettle"}});
        let error = render_value(&json!("about {{ state.summary }}"), &ctx).unwrap_err();
        assert_eq!(error, "`state.summary` is not defined");
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(check("{{ state.name ").is_err());
        assert!(check("{{ state.name }}").is_ok());
    }
}
