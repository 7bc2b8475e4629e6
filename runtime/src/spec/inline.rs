//! TEA's inline code on a node or step: `run: |` (a string), `script: |`, `run: {type: lua,
//! code}`, with `language:` or a first-line marker (`-- lua`, `% prolog`) naming the language
//! (Python when nothing does). Which languages run is decided by the interpreters Kettle has
//! (`kettle_build::INTERPRETERS`), one entry per language.

use super::flow::ActionView;
use serde_json::Value;

/// A node's `isolation:`: how its inline code shares an interpreter instance.
pub const ISOLATIONS: &[&str] = &["run", "node"];

/// Inline code as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineCode {
    /// Lower case: `python`, `lua`, `prolog`, or what `language:` says.
    pub language: String,
    pub code: String,
    /// The key holding the code: `run`, `script`, or `run.code`.
    pub key: &'static str,
}

/// The inline code of an action, if it has some. `run:` in the expression form is not code.
pub fn inline_code(view: &ActionView<'_>) -> Option<InlineCode> {
    let (code, key, typed) = match (view.script, view.run) {
        (Some(script), _) => (text(script), "script", None),
        (None, Some(Value::String(code))) => (code.clone(), "run", None),
        (None, Some(Value::Object(run))) => {
            let kind = run.get("type").and_then(Value::as_str)?;
            // `expression` is not code; an unknown type is reported as such by validation.
            let language = ["python", "lua", "prolog"]
                .into_iter()
                .find(|language| kind.eq_ignore_ascii_case(language))?;
            let code = run.get("code").map(text).unwrap_or_default();
            (code, "run.code", Some(language.to_string()))
        }
        _ => return None,
    };
    let language = typed
        .or_else(|| view.language.map(|l| l.trim().to_ascii_lowercase()))
        .or_else(|| marker(&code))
        .unwrap_or_else(|| "python".into());
    Some(InlineCode {
        language,
        code,
        key,
    })
}

/// Whether Kettle has an interpreter for `language`.
pub fn runs(language: &str) -> bool {
    kettle_build::interpreter(language).is_some()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// TEA's first-line markers: `-- lua`, `% prolog`.
fn marker(code: &str) -> Option<String> {
    let first = code.trim_start().lines().next()?.trim();
    ["lua", "prolog"]
        .into_iter()
        .find(|l| first == format!("-- {l}") || first == format!("% {l}"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        run: Option<&'a Value>,
        script: Option<&'a Value>,
        language: Option<&'a String>,
    ) -> ActionView<'a> {
        ActionView {
            component: None,
            config: None,
            uses: None,
            with: None,
            output: None,
            run,
            script,
            language,
        }
    }

    #[test]
    fn the_language_comes_from_the_key_the_marker_or_python() {
        let python = Value::String("return {\"a\": 1}".into());
        let lua = Value::String("-- lua\nreturn {}".into());
        let typed = serde_json::json!({"type": "prolog", "code": "x."});
        let expression = serde_json::json!({"type": "expression", "value": "1"});
        let named = "Lua".to_string();
        let language = |v: ActionView<'_>| inline_code(&v).map(|c| (c.language, c.key));
        assert_eq!(
            language(view(Some(&python), None, None)),
            Some(("python".into(), "run"))
        );
        assert_eq!(
            language(view(Some(&lua), None, None)),
            Some(("lua".into(), "run"))
        );
        assert_eq!(
            language(view(None, Some(&python), Some(&named))),
            Some(("lua".into(), "script"))
        );
        assert_eq!(
            language(view(Some(&typed), None, None)),
            Some(("prolog".into(), "run.code"))
        );
        assert_eq!(language(view(Some(&expression), None, None)), None);
        assert!(runs("python") && runs("prolog") && !runs("javascript"));
    }
}
