//! Checks of the flow between nodes: `goto` targets, edge groups (conditional and parallel),
//! fan-in nodes, and nodes no route reaches.

use super::error::SpecError;
use super::flow::{FanIn, Goto};
use super::load::LoadedSpec;
use super::model::{END, START};
use rustc_hash::FxHashMap;
use std::collections::HashSet;

/// Problems go to `errors`; what TEA allows but is likely a mistake (unreachable nodes, edges
/// never taken) to `warnings`.
pub fn validate_flow(
    loaded: &LoadedSpec,
    known: &FxHashMap<&str, usize>,
    errors: &mut Vec<SpecError>,
    warnings: &mut Vec<SpecError>,
) {
    let spec = &loaded.spec;
    let exists = |name: &str| name == END || known.contains_key(name);

    for (i, node) in spec.nodes.iter().enumerate() {
        match &node.goto {
            Some(Goto::To(to)) if !exists(to) => {
                errors.push(unknown(loaded, &format!("nodes[{i}].goto"), to, known));
            }
            Some(Goto::Rules(rules)) => {
                for (j, rule) in rules.iter().enumerate() {
                    if !exists(&rule.to) {
                        errors.push(unknown(
                            loaded,
                            &format!("nodes[{i}].goto[{j}].to"),
                            &rule.to,
                            known,
                        ));
                    }
                }
                if let Some(last) = rules.iter().position(|r| r.condition.is_none())
                    && last + 1 < rules.len()
                {
                    errors.push(loaded.error_at(
                        &format!("nodes[{i}].goto[{}]", last + 1),
                        format!(
                            "this rule of `{}` never runs: the rule before it has no `if:` and always matches",
                            node.name
                        ),
                        Some("move the rule without `if:` to the end".into()),
                    ));
                }
            }
            _ => {}
        }
        if let Some(FanIn::Node(target)) = &node.fan_in
            && node.kind.as_deref() == Some("dynamic_parallel")
            && !known.contains_key(target.as_str())
        {
            errors.push(unknown(
                loaded,
                &format!("nodes[{i}].fan_in"),
                target,
                known,
            ));
        }
    }

    let mut by_source: Vec<(&str, Vec<usize>)> = Vec::new();
    for (j, edge) in spec.edges.iter().enumerate() {
        match by_source.iter_mut().find(|(from, _)| *from == edge.from) {
            Some((_, list)) => list.push(j),
            None => by_source.push((edge.from.as_str(), vec![j])),
        }
        if let Some(kind) = &edge.kind
            && !["parallel", "normal"].contains(&kind.as_str())
        {
            errors.push(loaded.error_at(
                &format!("edges[{j}].type"),
                format!("unknown edge type `{kind}`"),
                Some("use `type: parallel` (with `fan_in:`) or leave `type:` out".into()),
            ));
        }
        if let Some(condition) = &edge.condition
            && condition.kind != "expression"
        {
            errors.push(loaded.error_at(
                &format!("edges[{j}].condition.type"),
                format!("unknown condition type `{}`", condition.kind),
                Some("use `condition: {type: expression, value: EXPR}`".into()),
            ));
        }
    }
    for (from, list) in &by_source {
        check_group(loaded, from, list, known, errors, warnings);
    }
    unreachable(loaded, known, warnings);
}

/// The edges out of one node: all parallel (one fan-in), or conditional rules in order.
fn check_group(
    loaded: &LoadedSpec,
    from: &str,
    list: &[usize],
    known: &FxHashMap<&str, usize>,
    errors: &mut Vec<SpecError>,
    warnings: &mut Vec<SpecError>,
) {
    let edges = &loaded.spec.edges;
    let parallel: Vec<usize> = list
        .iter()
        .copied()
        .filter(|j| edges[*j].is_parallel())
        .collect();
    if !parallel.is_empty() {
        if parallel.len() < list.len() {
            let sequential = list.iter().copied().find(|j| !edges[*j].is_parallel());
            errors.push(loaded.error_at(
                &format!("edges[{}]", sequential.unwrap_or(list[0])),
                format!("`{from}` has both parallel and sequential edges"),
                Some("after a fan-out the run continues at the fan-in node; put the sequential edge on the fan-in node".into()),
            ));
        }
        if from == START {
            errors.push(loaded.error_at(
                &format!("edges[{}].from", parallel[0]),
                "parallel edges cannot start at __start__",
                Some("add a first node and fan out from it".into()),
            ));
        }
        let first_fan_in = edges[parallel[0]].fan_in.as_deref();
        for &j in &parallel {
            let edge = &edges[j];
            if edge.condition.is_some() || edge.when.is_some() {
                errors.push(loaded.error_at(
                    &format!("edges[{j}]"),
                    "a parallel edge cannot have a condition: every branch runs",
                    Some("route inside the branch with `goto:` rules instead".into()),
                ));
            }
            match edge.fan_in.as_deref() {
                None => errors.push(loaded.error_at(
                    &format!("edges[{j}]"),
                    format!("parallel edge `{from}` → `{}` has no `fan_in:`", edge.to),
                    Some("add `fan_in: NODE`, the node where the branches join".into()),
                )),
                Some(fan_in) if Some(fan_in) != first_fan_in => errors.push(loaded.error_at(
                    &format!("edges[{j}].fan_in"),
                    format!(
                        "parallel edges from `{from}` join at different nodes (`{}` and `{fan_in}`)",
                        first_fan_in.unwrap_or_default()
                    ),
                    Some("one fan-out has one fan-in node; give every edge of the group the same `fan_in:`".into()),
                )),
                Some(fan_in) => match known.get(fan_in) {
                    None if j == parallel[0] => {
                        errors.push(unknown(loaded, &format!("edges[{j}].fan_in"), fan_in, known))
                    }
                    Some(&node) if !loaded.spec.nodes[node].is_fan_in() && j == parallel[0] => {
                        errors.push(loaded.error_at(
                            &format!("edges[{j}].fan_in"),
                            format!("`{fan_in}` is the fan-in node of `{from}`, but it is not marked `fan_in: true`"),
                            Some(format!("add `fan_in: true` to node `{fan_in}`; it receives `parallel_results`")),
                        ));
                    }
                    _ => {}
                },
            }
        }
        return;
    }
    if let Some(pos) = list.iter().position(|j| edges[*j].is_unconditional())
        && pos + 1 < list.len()
    {
        let first = list[pos];
        // TEA accepts this and takes the first; so does Kettle, with a warning.
        warnings.push(loaded.error_at(
            &format!("edges[{}]", list[pos + 1]),
            format!("`{from}` already has an edge (edges[{first}]) that is always taken, so this one never is"),
            Some("give the edges `when:` conditions (the first true one wins), or make them a parallel group (`type: parallel` with `fan_in:`)".into()),
        ));
    }
}

/// Nodes that no route from `__start__` reaches (a warning: TEA allows them).
fn unreachable(loaded: &LoadedSpec, known: &FxHashMap<&str, usize>, warnings: &mut Vec<SpecError>) {
    let spec = &loaded.spec;
    let count = spec.nodes.len();
    let index = |name: &str| known.get(name).copied();
    // The edges out of a node up to the first that is always taken (the rest never are).
    let edge_targets = |from: &str| -> Vec<usize> {
        let mut targets = Vec::new();
        for e in spec.edges.iter().filter(|e| e.from == from) {
            let fan_in = e.fan_in.as_deref().filter(|_| e.is_parallel());
            targets.extend([index(&e.to), fan_in.and_then(index)].into_iter().flatten());
            if e.is_unconditional() && !e.is_parallel() {
                break;
            }
        }
        targets
    };
    let mut stack: Vec<usize> = if spec.edges.iter().any(|e| e.from == START) {
        edge_targets(START)
    } else {
        (count > 0).then_some(0).into_iter().collect()
    };
    let mut seen = HashSet::new();
    while let Some(i) = stack.pop() {
        if i >= count || !seen.insert(i) {
            continue;
        }
        let node = &spec.nodes[i];
        if let Some(FanIn::Node(target)) = &node.fan_in {
            stack.extend(index(target));
        }
        // A failure routes to the error handler.
        if let Some(handler) = &node.on_error {
            stack.extend(index(handler));
        }
        match &node.goto {
            Some(Goto::To(to)) => stack.extend(index(to)),
            Some(Goto::Rules(rules)) => stack.extend(rules.iter().filter_map(|r| index(&r.to))),
            None => {
                let targets = edge_targets(&node.name);
                if spec.edges.iter().any(|e| e.from == node.name) {
                    stack.extend(targets);
                } else {
                    stack.push(i + 1);
                }
            }
        }
    }
    for (i, node) in spec.nodes.iter().enumerate() {
        if !seen.contains(&i) {
            warnings.push(loaded.error_at(
                &format!("nodes[{i}].name"),
                format!(
                    "node `{}` is unreachable: no route from {START} leads to it",
                    node.name
                ),
                Some(
                    "route to it (`goto:`, an edge, or its place in the list), or remove it".into(),
                ),
            ));
        }
    }
}

fn unknown(loaded: &LoadedSpec, at: &str, name: &str, known: &FxHashMap<&str, usize>) -> SpecError {
    let mut names: Vec<&str> = known.keys().copied().collect();
    names.sort_unstable();
    loaded.error_at(
        at,
        format!("`{name}` is not a node of this agent"),
        Some(format!("known nodes: {}, plus {END}", names.join(", "))),
    )
}
