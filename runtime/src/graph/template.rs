//! Jinja templates and expressions over `state` and `variables` (minijinja, with Python-style
//! methods such as `state.get("k", default)` and Python's built-ins, see `python.rs`).
//!
//! Expressions (`run: {type: expression}`, conditions) are strict: reading a key that is not
//! there is an error naming it. Templates (`with:`, `output:`, `items:`) follow TEA's
//! documented rule: a missing key read directly (`{{ state.missing }}`) is None — null as a
//! whole value, empty inside text, replaced by `| default(...)` — and reading into it
//! (`{{ state.missing.deep }}`) is an error naming it.

use super::json_view;
use super::python;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

static ENV: LazyLock<Environment<'static>> =
    LazyLock::new(|| environment(UndefinedBehavior::Strict));
static TEMPLATES: LazyLock<Environment<'static>> =
    LazyLock::new(|| environment(UndefinedBehavior::Lenient));

fn environment(undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
    env.set_keep_trailing_newline(true);
    env.set_unknown_method_callback(|state, value, method, args| {
        // A method called on a missing key is the missing key's error, not the method's.
        if value.is_undefined() {
            return Err(minijinja::Error::from(minijinja::ErrorKind::UndefinedError));
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    env.add_function("len", len);
    python::install(&mut env);
    env
}

/// TEA's `'%d' % x` inside every `{{ }}` and `{% %}` of a template.
fn with_percent(source: &str) -> Cow<'_, str> {
    if !source.contains('%') {
        return Cow::Borrowed(source);
    }
    let mut out = String::new();
    let mut rest = source;
    while let Some(open) = [rest.find("{{"), rest.find("{%")]
        .into_iter()
        .flatten()
        .min()
    {
        let close_token = if rest[open..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        let Some(close) = rest[open + 2..].find(close_token).map(|c| c + open + 2) else {
            break;
        };
        out.push_str(&rest[..open + 2]);
        out.push_str(&python::rewrite_percent(&rest[open + 2..close]));
        rest = &rest[close..];
        out.push_str(&rest[..2]);
        rest = &rest[2..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Python's `len()`, for expressions written for TEA.
fn len(value: minijinja::Value) -> Result<usize, minijinja::Error> {
    value.len().ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("len() of a value that has no length ({})", value.kind()),
        )
    })
}

/// The expression inside `source`, which may be written bare or as one `{{ ... }}`.
pub fn expression_source(source: &str) -> &str {
    let trimmed = source.trim();
    if trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed.matches("{{").count() == 1
        && trimmed.matches("}}").count() == 1
    {
        trimmed[2..trimmed.len() - 2].trim()
    } else {
        trimmed
    }
}

/// Checks the syntax of an expression.
pub fn check_expression(source: &str) -> Result<(), String> {
    compiled(source).map(|_| ())
}

/// An expression compiled once: a node or condition is evaluated on every step that reaches
/// it, and compiling is most of what evaluating a small expression costs.
type Compiled = Arc<minijinja::Expression<'static, 'static>>;

/// Expressions compiled so far, by their source; emptied when it holds [`COMPILED_KEPT`] (a
/// process that loads ever new agents, such as a server, does not grow without bound).
static COMPILED: LazyLock<RwLock<HashMap<String, Compiled, foldhash::fast::RandomState>>> =
    LazyLock::new(RwLock::default);
const COMPILED_KEPT: usize = 10_000;

fn compiled(source: &str) -> Result<Compiled, String> {
    if let Some(found) = COMPILED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(source)
    {
        return Ok(found.clone());
    }
    let rewritten = python::rewrite_percent(expression_source(source));
    let expression = Arc::new(
        ENV.compile_expression_owned(rewritten)
            .map_err(|e| describe(&e))?,
    );
    let mut compiled = COMPILED.write().unwrap_or_else(PoisonError::into_inner);
    if compiled.len() >= COMPILED_KEPT {
        compiled.clear();
    }
    compiled.insert(source.to_string(), expression.clone());
    Ok(expression)
}

/// What templates and expressions read: a JSON mapping (`state`, `variables`, ...), shared, and
/// seen by minijinja as a view into it ([`json_view`]), so that evaluating against it copies
/// only what is read.
#[derive(Debug, Clone)]
pub struct Context {
    json: Arc<Value>,
    jinja: minijinja::Value,
}

impl Context {
    pub fn new(json: Value) -> Self {
        let json = Arc::new(json);
        Self {
            jinja: json_view::view(json.clone()),
            json,
        }
    }

    /// The context as JSON.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// This context with `key` set to `value` at its top level.
    pub fn with(&self, key: &str, value: Value) -> Self {
        let mut json = Value::clone(&self.json);
        if let Value::Object(map) = &mut json {
            map.insert(key.into(), value);
        }
        Self::new(json)
    }
}

impl From<Value> for Context {
    fn from(json: Value) -> Self {
        Self::new(json)
    }
}

/// Evaluates an expression against `context`.
pub fn eval_expression(source: &str, context: &Context) -> Result<Value, String> {
    eval(source, context, false)
}

/// Evaluates; with `missing_is_none`, a value that is not there is None (TEA's conditions
/// read state through a mapping that answers None for a missing key).
fn eval(source: &str, context: &Context, missing_is_none: bool) -> Result<Value, String> {
    let expression = compiled(source)?;
    match expression.eval(&context.jinja) {
        // `state['nope']` is an error, as a KeyError is in TEA's Python.
        Ok(value) if value.is_undefined() && missing_is_none => Ok(Value::Null),
        Ok(value) if value.is_undefined() => Err(
            match missing_path(expression.undeclared_variables(true), context.json()) {
                Some(missing) => format!("`{missing}` is not defined"),
                None => "it reads a key that is not defined; use `state.get(\"key\", default)` for a key that may be missing".to_string(),
            },
        ),
        Ok(value) => serde_json::to_value(&value).map_err(|e| e.to_string()),
        Err(e) => {
            if e.kind() == minijinja::ErrorKind::UndefinedError
                && let Some(missing) =
                    missing_path(expression.undeclared_variables(true), context.json())
            {
                return Err(format!("`{missing}` is not defined"));
            }
            Err(describe(&e))
        }
    }
}

/// Evaluates an expression as a condition (Jinja truthiness).
/// A condition whose whole value is a missing key (`state.done`) is false, as in TEA.
pub fn eval_condition(source: &str, context: &Context) -> Result<bool, String> {
    eval(source, context, true).map(|v| truthy(&v))
}

/// Python/Jinja truthiness of a JSON value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Checks the syntax of a template.
pub fn check(source: &str) -> Result<(), String> {
    TEMPLATES
        .template_from_str(&with_percent(source))
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
pub fn render_value(value: &Value, context: &Context) -> Result<Value, String> {
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

fn render_string(source: &str, context: &Context) -> Result<Value, String> {
    if !source.contains("{{") && !source.contains("{%") {
        return Ok(Value::String(source.to_string()));
    }
    let source = with_percent(source);
    let source = source.as_ref();
    let template = TEMPLATES
        .template_from_str(source)
        .map_err(|e| describe(&e))?;
    let trimmed = source.trim();
    let single = trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed.matches("{{").count() == 1
        && trimmed.matches("}}").count() == 1
        && !trimmed.contains("{%");
    let result = if single {
        let expression = trimmed[2..trimmed.len() - 2].trim();
        TEMPLATES
            .compile_expression(expression)
            .and_then(|e| e.eval(&context.jinja))
            .map(|v| {
                if v.is_undefined() {
                    Value::Null
                } else {
                    serde_json::to_value(&v).unwrap_or(Value::Null)
                }
            })
    } else {
        template.render(&context.jinja).map(Value::String)
    };
    result.map_err(|e| {
        if e.kind() == minijinja::ErrorKind::UndefinedError
            && let Some(missing) = first_missing(&template, context.json())
        {
            return format!("`{missing}` is not defined");
        }
        describe(&e)
    })
}

/// The first variable path the template reads that the context does not have.
fn first_missing(template: &minijinja::Template<'_, '_>, context: &Value) -> Option<String> {
    missing_path(template.undeclared_variables(true), context)
}

fn missing_path(paths: std::collections::HashSet<String>, context: &Value) -> Option<String> {
    let mut paths: Vec<String> = paths.into_iter().collect();
    paths.sort();
    paths.into_iter().find_map(|path| {
        let mut current = context;
        let mut end = 0;
        for part in path.split('.') {
            end += part.len();
            match current.get(part) {
                Some(next) => current = next,
                // The path up to the first missing part: `state.name` of `state.name.upper`.
                None => return Some(path[..end].to_string()),
            }
            end += 1;
        }
        None
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
    fn an_expression_is_compiled_once_and_evaluated_against_each_context() {
        let source = "state[\"n\"] % 7 + 1";
        let first = compiled(source).unwrap();
        assert!(Arc::ptr_eq(&first, &compiled(source).unwrap()));
        assert_eq!(
            eval_expression(source, &json!({"state": {"n": 9}}).into()),
            Ok(json!(3))
        );
        assert_eq!(
            eval_expression(source, &json!({"state": {"n": 13}}).into()),
            Ok(json!(7))
        );
        assert!(eval_expression("state[", &json!({}).into()).is_err());
    }

    #[test]
    fn renders_text_and_keeps_types_of_single_expressions() {
        let ctx = Context::new(json!({"state": {"name": "kettle", "items": [1, 2]}}));
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
    fn missing_keys_in_templates_follow_tea() {
        let ctx = Context::new(json!({"state": {"name": "kettle"}}));
        // Read directly: None (null as a whole value, empty in text), and `default` applies.
        assert_eq!(
            render_value(&json!("{{ state.summary }}"), &ctx).unwrap(),
            Value::Null
        );
        assert_eq!(
            render_value(&json!("about {{ state.summary }}!"), &ctx).unwrap(),
            json!("about !")
        );
        assert_eq!(
            render_value(&json!("{{ state.summary | default('none yet') }}"), &ctx).unwrap(),
            json!("none yet")
        );
        // Read into: an error naming the missing key.
        let error = render_value(&json!("about {{ state.summary.title }}"), &ctx).unwrap_err();
        assert_eq!(error, "`state.summary` is not defined");
    }

    #[test]
    fn python_built_ins_and_percent_formatting() {
        let ctx =
            Context::new(json!({"state": {"n": 7, "xs": [3, 1, 2], "price": "2.5", "f": -2.5}}));
        for (source, expected) in [
            ("str(state.n) ~ '!'", json!("7!")),
            ("int('42') + int(3.9)", json!(45)),
            ("float(state.price) * 2", json!(5.0)),
            ("min(state.xs)", json!(1)),
            ("max(4, state.n, 2)", json!(7)),
            ("abs(state.f)", json!(2.5)),
            ("round(2.5)", json!(2)),
            ("round(2.675, 1)", json!(2.7)),
            ("sorted(state.xs)", json!([1, 2, 3])),
            ("sorted(state.xs, reverse=true)", json!([3, 2, 1])),
            ("'%d of %s' % (state.n, 'ten')", json!("7 of ten")),
            ("'%.2f' % state.f", json!("-2.50")),
            ("state.n % 4", json!(3)),
        ] {
            assert_eq!(eval_expression(source, &ctx).unwrap(), expected, "{source}");
        }
        assert_eq!(
            render_value(&json!("{{ '%03d' % state.n }} items"), &ctx).unwrap(),
            json!("007 items")
        );
    }

    #[test]
    fn python_flavoured_expressions_work() {
        let ctx = Context::new(json!({"state": {"x": true, "items": [1, 2, 3], "n": 2}}));
        for (source, expected) in [
            (r#"state["x"] == True"#, json!(true)),
            ("state.x and not state.n > 5 or False", json!(true)),
            (r#"state.get("missing", 7)"#, json!(7)),
            (r#"state.get("n")"#, json!(2)),
            ("len(state.items) > 2", json!(true)),
            ("state.items | length", json!(3)),
            ("{{ state.n + 1 }}", json!(3)),
            ("None", Value::Null),
        ] {
            assert_eq!(eval_expression(source, &ctx).unwrap(), expected, "{source}");
        }
        assert_eq!(
            eval_expression("state.nope > 1", &ctx).unwrap_err(),
            "`state.nope` is not defined"
        );
        // A missing key in an expression is an error, not a silent null; a condition that is
        // a missing key is false.
        assert!(eval_expression("state['nope']", &ctx).is_err());
        assert!(eval_expression("state.nope", &ctx).is_err());
        assert_eq!(eval_condition("state.nope", &ctx), Ok(false));
        assert!(check_expression("state.x ==").is_err());
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(check("{{ state.name ").is_err());
        assert!(check("{{ state.name }}").is_ok());
    }
}
