//! Typing the agent file's value tree into an [`AgentSpec`] with every mistake collected.
//!
//! serde stops at the first error, so the tree is typed in parts — the top level, each node,
//! each edge, each `action:` step — and when a part fails, the key at fault is recorded and
//! taken out, and the part is typed again. What is left types cleanly, so the structural
//! checks still run on the rest of the file and every problem is reported at once.

use super::flow::{NodeAction, StepSpec};
use super::model::{AgentSpec, EdgeSpec, NodeSpec};
use super::wording;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

/// One typing mistake: where (a path such as `nodes[1].retry`), what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    pub path: String,
    /// The mistake is the key itself (an unknown key), not its value.
    pub at_key: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// Bounds the retries of one part: each retry removes a key, so this is never reached on a
/// real file.
const MAX_ATTEMPTS: usize = 500;

/// A list item still to be typed: a value of the tree, or its JSON text (a kept tree's).
enum Item<'a> {
    Tree(Value),
    Json(&'a RawValue),
}

/// `nodes:` or `edges:` still to be typed.
enum Items<'a> {
    Tree(Option<Value>),
    Json(&'a RawValue),
}

/// Types the whole file. The spec holds every part that typed; `mistakes` says what did not.
pub fn type_agent(root: Value, mistakes: &mut Vec<Mistake>) -> AgentSpec {
    let mut map = match root {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            mistakes.push(Mistake {
                path: String::new(),
                at_key: false,
                message: format!(
                    "an agent file is a mapping with `nodes:`, but this one is {}",
                    wording::found(&other)
                ),
                hint: Some("start from `name: my-agent` and `nodes:` with a list of nodes".into()),
            });
            return AgentSpec::default();
        }
    };
    let nodes = Items::Tree(map.remove("nodes"));
    let edges = Items::Tree(map.remove("edges"));
    type_parts(
        map,
        |mistakes| type_nodes(nodes, mistakes),
        |mistakes| type_edges(edges, mistakes),
        mistakes,
    )
}

/// Types the JSON text of a file's tree (a tree the engine kept) as [`type_agent`] types the
/// tree itself, to the same spec and mistakes. A file whose nodes and edges all type is read in
/// one pass ([`TypedAtOnce`]); otherwise a node or edge that types at once is typed from its
/// text and never becomes a value tree, and one that does not is read into a tree and typed
/// leniently, as ever. Fails only on text that is not a JSON mapping.
pub fn type_agent_json(json: &str, mistakes: &mut Vec<Mistake>) -> serde_json::Result<AgentSpec> {
    if let Ok(TypedAtOnce {
        rest,
        mut nodes,
        edges,
    }) = serde_json::from_str(json)
    {
        nodes.iter_mut().for_each(tea_action);
        return Ok(type_parts(
            rest.into_iter().collect(),
            |_| nodes,
            |_| edges,
            mistakes,
        ));
    }
    let parts: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(json)?;
    let (mut nodes, mut edges) = (Items::Tree(None), Items::Tree(None));
    let mut map = Map::new();
    for (key, raw) in parts {
        match key.as_str() {
            "nodes" => nodes = Items::Json(raw),
            "edges" => edges = Items::Json(raw),
            _ => {
                map.insert(key, serde_json::from_str(raw.get())?);
            }
        }
    }
    Ok(type_parts(
        map,
        |mistakes| type_nodes(nodes, mistakes),
        |mistakes| type_edges(edges, mistakes),
        mistakes,
    ))
}

/// A kept tree whose every node and edge types, read in one pass: the nodes and edges straight
/// into their types, the other keys into values (in key order, as the part-by-part reading
/// gives them). Reading it fails at the first part that does not type, and the file is then
/// read part by part.
struct TypedAtOnce {
    rest: std::collections::BTreeMap<String, Value>,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
}

impl<'de> Deserialize<'de> for TypedAtOnce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Parts;
        impl<'de> Visitor<'de> for Parts {
            type Value = TypedAtOnce;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an agent file's mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypedAtOnce, A::Error> {
                let mut parts = TypedAtOnce {
                    rest: std::collections::BTreeMap::new(),
                    nodes: Vec::new(),
                    edges: Vec::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "nodes" => {
                            parts.nodes = map
                                .next_value::<Option<Chunked<_>>>()?
                                .map_or_else(Vec::new, |nodes| nodes.0);
                        }
                        "edges" => {
                            parts.edges = map
                                .next_value::<Option<Chunked<_>>>()?
                                .map_or_else(Vec::new, |edges| edges.0);
                        }
                        _ => {
                            let value = map.next_value()?;
                            parts.rest.insert(key, value);
                        }
                    }
                }
                Ok(parts)
            }
        }
        deserializer.deserialize_map(Parts)
    }
}

/// A list read without moving its items each time it grows (a typed node is most of a
/// kilobyte, and JSON does not say how many there are): in chunks of doubling size, joined
/// once at the end.
struct Chunked<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut full: Vec<Vec<T>> = Vec::new();
                let mut chunk = Vec::with_capacity(8);
                while let Some(item) = seq.next_element()? {
                    if chunk.len() == chunk.capacity() {
                        let next = Vec::with_capacity(chunk.capacity() * 2);
                        full.push(std::mem::replace(&mut chunk, next));
                    }
                    chunk.push(item);
                }
                if full.is_empty() {
                    return Ok(chunk);
                }
                let mut all =
                    Vec::with_capacity(full.iter().map(Vec::len).sum::<usize>() + chunk.len());
                for items in full {
                    all.extend(items);
                }
                all.extend(chunk);
                Ok(all)
            }
        }
        deserializer
            .deserialize_seq(ListVisitor(std::marker::PhantomData))
            .map(Chunked)
    }
}

/// [`type_agent`] once `nodes:` and `edges:` are taken out of the top-level `map`: the top
/// level is typed first, then `nodes`, then `edges`, the order mistakes have always come in.
fn type_parts(
    mut map: Map<String, Value>,
    nodes: impl FnOnce(&mut Vec<Mistake>) -> Vec<NodeSpec>,
    edges: impl FnOnce(&mut Vec<Mistake>) -> Vec<EdgeSpec>,
    mistakes: &mut Vec<Mistake>,
) -> AgentSpec {
    let mut tea_notes = Vec::new();
    if let Some(Value::Object(settings)) = map.get_mut("settings") {
        super::tea_settings::rewrite(settings, &mut tea_notes, mistakes);
    }
    let mut spec: AgentSpec = lenient(Value::Object(map), "", mistakes).unwrap_or_default();
    spec.tea_notes = tea_notes;
    spec.nodes = nodes(mistakes);
    spec.edges = edges(mistakes);
    spec
}

fn type_nodes(nodes: Items<'_>, mistakes: &mut Vec<Mistake>) -> Vec<NodeSpec> {
    items(nodes, "nodes", mistakes)
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Item::Json(raw) => match serde_json::from_str::<NodeSpec>(raw.get()) {
                Ok(mut node) => {
                    tea_action(&mut node);
                    node
                }
                Err(_) => type_node(tree_of(raw), &format!("nodes[{i}]"), mistakes),
            },
            Item::Tree(item) => type_node(item, &format!("nodes[{i}]"), mistakes),
        })
        .collect()
}

fn type_edges(edges: Items<'_>, mistakes: &mut Vec<Mistake>) -> Vec<EdgeSpec> {
    items(edges, "edges", mistakes)
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let item = match item {
                Item::Json(raw) => match serde_json::from_str(raw.get()) {
                    Ok(edge) => return edge,
                    Err(_) => tree_of(raw),
                },
                Item::Tree(item) => item,
            };
            lenient(item, &format!("edges[{i}]"), mistakes).unwrap_or_default()
        })
        .collect()
}

/// The items of `nodes:` or `edges:`, as [`list`] finds them.
fn items<'a>(items: Items<'a>, key: &str, mistakes: &mut Vec<Mistake>) -> Vec<Item<'a>> {
    let tree = match items {
        Items::Json(raw) => match serde_json::from_str::<Option<Vec<&RawValue>>>(raw.get()) {
            Ok(raws) => {
                return raws
                    .unwrap_or_default()
                    .into_iter()
                    .map(Item::Json)
                    .collect();
            }
            Err(_) => Some(tree_of(raw)),
        },
        Items::Tree(tree) => tree,
    };
    list(tree, key, mistakes)
        .into_iter()
        .map(Item::Tree)
        .collect()
}

/// The value tree of a part's JSON text, which was read as JSON already.
fn tree_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The items of `nodes:` or `edges:`; anything but a list is a mistake.
fn list(value: Option<Value>, key: &str, mistakes: &mut Vec<Mistake>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            mistakes.push(Mistake {
                path: key.to_string(),
                at_key: false,
                message: format!(
                    "`{key}:` must be a list, but it is {}",
                    wording::found(&other)
                ),
                hint: Some(format!(
                    "write one entry per line under `{key}:`, each starting with `- `"
                )),
            });
            Vec::new()
        }
    }
}

/// One node. Its `action:` step is typed on its own (inside an either-or, serde would only say
/// that it matched neither), and `action: NAME` becomes `uses: NAME`.
fn type_node(item: Value, at: &str, mistakes: &mut Vec<Mistake>) -> NodeSpec {
    let Value::Object(mut map) = item else {
        mistakes.push(Mistake {
            path: at.to_string(),
            at_key: false,
            message: format!(
                "{at}: a node is a mapping with `name:` and what it does, but this one is {}",
                wording::found(&item)
            ),
            hint: Some(
                "write `- name: NODE` followed by its keys, such as `uses: llm.call`".into(),
            ),
        });
        return NodeSpec::default();
    };
    let step = match map.remove("action") {
        Some(Value::Object(step)) => Some(NodeAction::Step(Box::new(
            lenient::<StepSpec>(Value::Object(step), &format!("{at}.action"), mistakes)
                .unwrap_or_default(),
        ))),
        Some(other) => {
            map.insert("action".into(), other);
            None
        }
        None => None,
    };
    let name = map.get("name").and_then(Value::as_str).map(str::to_string);
    let mut node =
        lenient::<NodeSpec>(Value::Object(map), at, mistakes).unwrap_or_else(|| NodeSpec {
            name: name.unwrap_or_default(),
            ..NodeSpec::default()
        });
    if step.is_some() {
        node.action = step;
    }
    tea_action(&mut node);
    node
}

/// `action: NAME` on a node is `uses: NAME` (on a `dynamic_parallel` node, the item's one step).
fn tea_action(node: &mut NodeSpec) {
    if let Some(NodeAction::Name(action)) = &node.action
        && node.uses.is_none()
    {
        if node.kind.as_deref() == Some("dynamic_parallel") {
            // Per item: the named action is the item's one step.
            node.action = Some(NodeAction::Step(Box::new(StepSpec {
                uses: Some(action.clone()),
                ..StepSpec::default()
            })));
        } else {
            node.uses = Some(action.clone());
            node.action = None;
        }
    }
}

/// Types `value` as `T`, recording each failure at `at` and retrying without the key at fault.
/// `None` when the failure concerns `value` as a whole.
pub fn lenient<T: DeserializeOwned>(
    mut value: Value,
    at: &str,
    mistakes: &mut Vec<Mistake>,
) -> Option<T> {
    // Most files type at once: that costs no path tracking.
    if let Ok(typed) = T::deserialize(&value) {
        return Some(typed);
    }
    let mut failed_at: Vec<String> = Vec::new();
    // A required key taken out for a bad value is not reported again as missing.
    let mut taken: Vec<String> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) => return Some(typed),
            Err(error) => error,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let message = error.inner().to_string();
        let unknown = wording::unknown_field(&message);
        // An unknown key is reported at the key itself.
        let mut place = segments.clone();
        if let Some(key) = &unknown
            && !matches!(place.last(), Some(Segment::Map { key: last }) if last == key)
        {
            place.push(Segment::Map { key: key.clone() });
        }
        let path = join(at, &place);
        let repeated = failed_at.contains(&path);
        failed_at.push(path.clone());
        let written = get(&value, &place).cloned();
        let already = wording::missing_field(&message)
            .is_some_and(|key| taken.contains(&join(&path, &[Segment::Map { key }])));
        if !already {
            let (text, hint) = wording::describe(&path, &message, written.as_ref());
            mistakes.push(Mistake {
                path: path.clone(),
                at_key: unknown.is_some(),
                message: text,
                hint,
            });
        }
        taken.push(path);
        if !take_out(&mut value, &place, repeated) {
            return None;
        }
    }
    None
}

/// Removes what failed at `place`: its key from the mapping holding it, or, for a list item,
/// the item's content (the item stays, so later items keep their index) unless that failed
/// already, in which case the whole list's key goes.
fn take_out(value: &mut Value, place: &[Segment], repeated: bool) -> bool {
    if let Some(Segment::Seq { index }) = place.last()
        && !repeated
        && let Some(Value::Array(items)) = get_mut(value, &place[..place.len() - 1])
        && let Some(item) = items.get_mut(*index)
    {
        *item = Value::Object(Map::new());
        return true;
    }
    let Some(cut) = place.iter().rposition(|s| matches!(s, Segment::Map { .. })) else {
        return false;
    };
    let Segment::Map { key } = &place[cut] else {
        return false;
    };
    match get_mut(value, &place[..cut]) {
        Some(Value::Object(map)) => map.remove(key).is_some(),
        _ => false,
    }
}

fn get<'a>(value: &'a Value, place: &[Segment]) -> Option<&'a Value> {
    place.iter().try_fold(value, |v, segment| match segment {
        Segment::Seq { index } => v.get(*index),
        Segment::Map { key } => v.get(key.as_str()),
        _ => Some(v),
    })
}

fn get_mut<'a>(value: &'a mut Value, place: &[Segment]) -> Option<&'a mut Value> {
    place.iter().try_fold(value, |v, segment| match segment {
        Segment::Seq { index } => v.get_mut(*index),
        Segment::Map { key } => v.get_mut(key.as_str()),
        _ => Some(v),
    })
}

/// `at` and the segments as a path: `nodes[0]` + `retry.max_attempts`.
fn join(at: &str, place: &[Segment]) -> String {
    let mut path = at.to_string();
    for segment in place {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            _ => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(value: Value) -> (AgentSpec, Vec<Mistake>) {
        let mut mistakes = Vec::new();
        let spec = type_agent(value, &mut mistakes);
        (spec, mistakes)
    }

    /// Typing a tree's JSON text must give what typing the tree gives, mistakes included.
    fn same_from_json(value: Value) {
        let json = value.to_string();
        let (spec, mistakes) = typed(value);
        let mut from_json = Vec::new();
        let spec_from_json = type_agent_json(&json, &mut from_json).expect("a JSON mapping");
        assert_eq!(format!("{spec_from_json:?}"), format!("{spec:?}"), "{json}");
        assert_eq!(from_json, mistakes, "{json}");
    }

    #[test]
    fn json_text_types_as_its_tree_does() {
        same_from_json(mistaken_file());
        same_from_json(json!({
            "nodes": [
                {"name": "four", "run": {"type": "expression", "value": "state.n + 1", "output_key": "n"}},
                {"name": "a", "action": "llm.call", "with": {"prompt": "hi"}, "description": "asks"},
                {"name": "b", "type": "dynamic_parallel", "items": "{{ [1] }}", "action": "llm.call"},
                {"name": "c", "type": "dynamic_parallel", "items": "{{ [1] }}",
                 "action": {"uses": "llm.call", "with": {"prompt": "{{ item }}"}}},
                {"name": "d", "type": "dynamic_parallel", "items": "{{ [1] }}",
                 "action": {"uses": "llm.call", "wiht": 1}},
            ],
            "edges": [
                {"from": "a", "to": "b", "condition": "state.x > 1"},
                "edge",
            ],
        }));
        same_from_json(json!({"nodes": "n", "edges": {"from": "a"}}));
        same_from_json(json!({"nodes": null, "edges": null, "name": "x"}));
        same_from_json(json!({"name": "only"}));
    }

    #[test]
    fn a_file_that_types_is_read_in_one_pass_and_one_with_a_mistake_part_by_part() {
        let clean = json!({
            "name": "c",
            "settings": {"max_steps": 5},
            "nodes": [
                {"name": "a", "action": "llm.call", "with": {"prompt": "hi"}},
                {"name": "b", "run": {"type": "expression", "value": "1", "output_key": "n"}},
            ],
            "edges": [{"from": "a", "to": "b"}],
        });
        let at_once: TypedAtOnce =
            serde_json::from_str(&clean.to_string()).expect("read in one pass");
        assert_eq!(
            (at_once.nodes.len(), at_once.edges.len(), at_once.rest.len()),
            (2, 1, 2)
        );
        same_from_json(clean);
        let mistaken = mistaken_file().to_string();
        assert!(serde_json::from_str::<TypedAtOnce>(&mistaken).is_err());
    }

    #[test]
    fn a_long_list_is_read_whole_and_in_order() {
        for n in [0, 1, 8, 9, 24, 25, 1000] {
            let list: Vec<u32> = (0..n).collect();
            let text = serde_json::to_string(&list).expect("JSON");
            let read: Chunked<u32> = serde_json::from_str(&text).expect("a list");
            assert_eq!(read.0, list);
        }
        assert!(serde_json::from_str::<Chunked<u32>>("[1, \"two\"]").is_err());
    }

    #[test]
    fn json_text_that_is_not_a_mapping_is_refused() {
        for text in ["[]", "1", "null", "{", "{\"nodes\": [1,}"] {
            assert!(type_agent_json(text, &mut Vec::new()).is_err(), "{text}");
        }
    }

    /// A file with a mistake in every part: settings, nodes (one not even a mapping), edges.
    fn mistaken_file() -> Value {
        json!({
            "name": "a",
            "settings": {"max_steps": "many", "parralel": 1},
            "nodes": [
                {"name": "one", "uses": "llm.call", "wiht": {}, "retry": {"max_attempts": -1}},
                "two",
                {"name": "three", "goto": 5, "fan_in": [1]},
            ],
            "edges": [{"from": "one", "to": ["three"]}],
        })
    }

    #[test]
    fn every_mistake_of_every_part_is_collected() {
        let (spec, mistakes) = typed(mistaken_file());
        let mut paths: Vec<&str> = mistakes.iter().map(|m| m.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "edges[0].to",
                "nodes[0].retry.max_attempts",
                "nodes[0].wiht",
                "nodes[1]",
                "nodes[2].fan_in",
                "nodes[2].goto",
                "settings.max_steps",
                "settings.parralel",
            ]
        );
        // What typed is kept, in place.
        assert_eq!(spec.nodes.len(), 3);
        assert_eq!(spec.nodes[0].uses.as_deref(), Some("llm.call"));
        assert_eq!(spec.nodes[2].name, "three");
        assert_eq!(spec.edges[0].from, "one");
    }

    #[test]
    fn messages_say_what_was_written_and_what_is_expected_in_plain_words() {
        let (_, mistakes) = typed(json!({
            "settings": {"max_steps": "many"},
            "nodes": [{"name": "one", "goto": 5, "steps": ["x"], "retry": {"max_attempts": -1}}],
        }));
        let messages: Vec<&str> = mistakes.iter().map(|m| m.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "settings.max_steps: expected a whole number (0 or more), but found the text `many`",
                "nodes[0].goto: expected a node name, or a list of `{if: EXPR, to: NODE}` rules, but found the number 5",
                "nodes[0].retry.max_attempts: expected a whole number (0 or more), but found the number -1",
                "nodes[0].steps[0]: expected a step (a mapping with `uses:`, `component:` or `run:`), but found the text `x`",
            ]
        );
        for m in &mistakes {
            for rust in ["struct", "enum", "u32", "u64", "untagged", "variant"] {
                assert!(!m.message.contains(rust), "{}", m.message);
            }
            assert!(m.hint.is_some(), "{}", m.message);
        }
    }

    #[test]
    fn tea_spellings_are_read() {
        let (spec, mistakes) = typed(json!({
            "nodes": [
                {"name": "a", "action": "llm.call", "with": {"prompt": "hi"}, "description": "asks"},
                {"name": "b", "type": "dynamic_parallel", "items": "{{ [1] }}", "action": "llm.call"},
            ],
            "edges": [{"from": "a", "to": "b", "condition": "state.x > 1"}],
        }));
        assert_eq!(mistakes, []);
        assert_eq!(spec.nodes[0].uses.as_deref(), Some("llm.call"));
        assert!(spec.nodes[0].action.is_none());
        assert!(
            matches!(&spec.nodes[1].action, Some(NodeAction::Step(s)) if s.uses.as_deref() == Some("llm.call"))
        );
        assert_eq!(
            spec.edges[0].condition.as_ref().map(|c| c.value.as_str()),
            Some("state.x > 1")
        );
    }

    #[test]
    fn unknown_keys_suggest_the_closest_one() {
        let (_, mistakes) = typed(json!({"nodes": [{"name": "a", "wiht": {}}]}));
        assert_eq!(mistakes.len(), 1);
        assert!(
            mistakes[0]
                .message
                .starts_with("nodes[0]: unknown field `wiht`"),
            "{}",
            mistakes[0].message
        );
        assert!(
            mistakes[0]
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("did you mean `with`?")),
            "{:?}",
            mistakes[0].hint
        );
    }
}
