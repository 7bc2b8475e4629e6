//! TEA's document-processor `extract_keywords` and `calculate_stats` steps: the words longer
//! than five characters (the first five) and the word and character counts of `state.doc`.

use kettle_guest::{Context, NodeError, Value, json};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let doc = state
        .get("doc")
        .ok_or_else(|| NodeError::invalid_input("the state has no `doc`"))?;
    let content = doc.get("content").and_then(Value::as_str).unwrap_or("");
    let lower = content.to_lowercase();
    let keywords: Vec<&str> = lower
        .split_whitespace()
        .filter(|w| w.chars().count() > 5)
        .take(5)
        .collect();
    Ok(json!({
        "doc_id": doc.get("id"),
        "title": doc.get("title"),
        "keywords": keywords,
        "word_count": content.split_whitespace().count(),
        "char_count": content.chars().count(),
    }))
}

kettle_guest::export_node!(run);
