//! TEA's document-processor `combine_results` node: one summary per processed document, from
//! the states `dynamic_parallel` collected.

use kettle_guest::{Context, NodeError, Value, json};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let processed = state
        .get("processed_documents")
        .and_then(Value::as_array)
        .ok_or_else(|| NodeError::invalid_input("the state has no list `processed_documents`"))?;
    let summaries: Vec<Value> = processed
        .iter()
        .map(|result| {
            let s = &result["state"];
            json!({
                "id": s["doc_id"],
                "title": s["title"],
                "keywords": s.get("keywords").cloned().unwrap_or_else(|| json!([])),
                "word_count": s.get("word_count").cloned().unwrap_or(json!(0)),
                "status": s["processing_status"],
            })
        })
        .collect();
    Ok(json!({
        "total_processed": summaries.len(),
        "document_summaries": summaries,
    }))
}

kettle_guest::export_node!(run);
