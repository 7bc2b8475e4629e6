//! `kettle graph`: the compiled graph as Mermaid, Graphviz DOT or JSON (for pages that draw it
//! themselves), with the condition of every conditional route on its edge and every parallel
//! group drawn as a cluster.

use super::{Condition, Graph, Next, NodeKind, Route};
use crate::spec::{END, START};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    /// `{"nodes": [{"id", "label"}], "edges": [{"from", "to", "label", "style"}], "groups":
    /// [{"name", "members"}]}`, `__start__` and `__end__` included as nodes.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Normal,
    /// Into a parallel branch.
    Fork,
    /// From a fork or a `dynamic_parallel` node to where its results are collected.
    Join,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    style: Style,
}

struct Group {
    name: String,
    members: Vec<String>,
}

pub fn render(graph: &Graph, title: &str, format: GraphFormat) -> String {
    let id = |next: Next| match next {
        Next::Node(i) => format!("n{i}"),
        Next::End => END.to_string(),
    };
    let mut edges = Vec::new();
    let mut groups = Vec::new();
    let mut add_route = |from: String, route: &Route, edges: &mut Vec<Edge>| match route {
        Route::Rules(rules) => {
            for rule in rules {
                edges.push(Edge {
                    from: from.clone(),
                    to: id(rule.to),
                    label: rule.when.as_ref().map(label),
                    style: Style::Normal,
                });
            }
        }
        Route::Parallel { branches, fan_in } => {
            let mut members = Vec::new();
            for branch in branches {
                edges.push(Edge {
                    from: from.clone(),
                    to: id(Next::Node(*branch)),
                    label: Some("parallel".into()),
                    style: Style::Fork,
                });
                members.push(id(Next::Node(*branch)));
            }
            edges.push(Edge {
                from: from.clone(),
                to: id(Next::Node(*fan_in)),
                label: Some("fan-in".into()),
                style: Style::Join,
            });
            groups.push(Group {
                name: format!("parallel {}", graph_name(graph, &from)),
                members,
            });
        }
    };
    add_route(START.to_string(), &graph.entry, &mut edges);
    for (i, node) in graph.nodes.iter().enumerate() {
        if let NodeKind::DynamicParallel(dp) = &node.kind
            && let Some(fan_in) = dp.fan_in
        {
            edges.push(Edge {
                from: id(Next::Node(i)),
                to: id(Next::Node(fan_in)),
                label: Some(format!("results in {}", dp.output)),
                style: Style::Join,
            });
        } else {
            add_route(id(Next::Node(i)), graph.route(i), &mut edges);
        }
    }
    let nodes: Vec<(String, String)> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (id(Next::Node(i)), node_label(n)))
        .collect();
    match format {
        GraphFormat::Mermaid => mermaid(&nodes, &edges, &groups),
        GraphFormat::Dot => dot(title, &nodes, &edges, &groups),
        GraphFormat::Json => json(&nodes, &edges, &groups),
    }
}

fn json(nodes: &[(String, String)], edges: &[Edge], groups: &[Group]) -> String {
    use serde_json::json;
    let mut all = vec![json!({"id": START, "label": START})];
    all.extend(
        nodes
            .iter()
            .map(|(id, label)| json!({"id": id, "label": label})),
    );
    all.push(json!({"id": END, "label": END}));
    let edges: Vec<_> = edges
        .iter()
        .map(|e| {
            let style = match e.style {
                Style::Normal => "normal",
                Style::Fork => "fork",
                Style::Join => "join",
            };
            json!({"from": e.from, "to": e.to, "label": e.label, "style": style})
        })
        .collect();
    let groups: Vec<_> = groups
        .iter()
        .map(|g| json!({"name": g.name, "members": g.members}))
        .collect();
    json!({"nodes": all, "edges": edges, "groups": groups}).to_string()
}

fn graph_name<'a>(graph: &'a Graph, id: &'a str) -> &'a str {
    id.strip_prefix('n')
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| graph.nodes.get(i))
        .map_or(id, |n| n.name.as_str())
}

fn label(condition: &Condition) -> String {
    if condition.expect {
        condition.written.clone()
    } else {
        format!("not ({})", condition.written)
    }
}

fn node_label(node: &super::GraphNode) -> String {
    let detail = match &node.kind {
        NodeKind::Action(action) => action.kind().to_string(),
        NodeKind::Steps(steps) => format!("{} steps", steps.len()),
        NodeKind::WhileLoop {
            condition,
            max_iterations,
            ..
        } => format!("while {condition} (max {max_iterations})"),
        NodeKind::DynamicParallel(dp) => format!("for each {} in {}", dp.item_var, dp.items),
    };
    let fan_in = if node.fan_in { ", fan-in" } else { "" };
    // The node's `description:`, its first line, shortened to fit a box.
    let description = node
        .description
        .as_deref()
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(|line| {
            let short: String = line.chars().take(60).collect();
            let more = if short.len() < line.len() { "…" } else { "" };
            format!("\n{short}{more}")
        })
        .unwrap_or_default();
    format!("{}\n{detail}{fan_in}{description}", node.name)
}

fn mermaid(nodes: &[(String, String)], edges: &[Edge], groups: &[Group]) -> String {
    let text = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    {START}([{START}])");
    let _ = writeln!(out, "    {END}([{END}])");
    for (id, label) in nodes {
        let _ = writeln!(out, "    {id}[\"{}\"]", text(label));
    }
    for (i, group) in groups.iter().enumerate() {
        let _ = writeln!(out, "    subgraph p{i}[\"{}\"]", text(&group.name));
        for member in &group.members {
            let _ = writeln!(out, "        {member}");
        }
        let _ = writeln!(out, "    end");
    }
    for edge in edges {
        let arrow = match edge.style {
            Style::Normal => "-->",
            Style::Fork => "==>",
            Style::Join => "-.->",
        };
        match &edge.label {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "    {} {arrow}|\"{}\"| {}",
                    edge.from,
                    text(l),
                    edge.to
                );
            }
            None => {
                let _ = writeln!(out, "    {} {arrow} {}", edge.from, edge.to);
            }
        }
    }
    out
}

fn dot(title: &str, nodes: &[(String, String)], edges: &[Edge], groups: &[Group]) -> String {
    let text = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n", text(title));
    let _ = writeln!(out, "    \"{START}\" [shape=oval];");
    let _ = writeln!(out, "    \"{END}\" [shape=oval];");
    for (id, label) in nodes {
        let _ = writeln!(out, "    {id} [shape=box, label=\"{}\"];", text(label));
    }
    for (i, group) in groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "    subgraph cluster_p{i} {{\n        label=\"{}\";\n        style=dashed;",
            text(&group.name)
        );
        for member in &group.members {
            let _ = writeln!(out, "        {member};");
        }
        let _ = writeln!(out, "    }}");
    }
    for edge in edges {
        let mut attributes = Vec::new();
        if let Some(l) = &edge.label {
            attributes.push(format!("label=\"{}\"", text(l)));
        }
        match edge.style {
            Style::Normal => {}
            Style::Fork => attributes.push("style=bold".into()),
            Style::Join => attributes.push("style=dashed".into()),
        }
        let quote = |id: &str| format!("\"{id}\"");
        let attributes = if attributes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attributes.join(", "))
        };
        let _ = writeln!(
            out,
            "    {} -> {}{attributes};",
            quote(&edge.from),
            quote(&edge.to)
        );
    }
    out.push_str("}\n");
    out
}
