//! The route out of every node, by TEA's precedence: the node's `goto` beats `edges:`, which
//! beat implicit chaining (the next node in the list; after the last, the end).

use super::template;
use super::{Condition, Next, Route, Rule};
use crate::spec::{EdgeSpec, Goto, LoadedSpec, START, SpecError, When};
use rustc_hash::FxHashMap;

/// The route out of `__start__` and out of every node.
pub(super) fn build(
    loaded: &LoadedSpec,
    index: &FxHashMap<&str, usize>,
    errors: &mut Vec<SpecError>,
) -> (Route, Vec<Route>) {
    let spec = &loaded.spec;
    let target = |name: &str| match index.get(name) {
        Some(i) => Next::Node(*i),
        None => Next::End,
    };
    let count = spec.nodes.len();
    let implicit = |i: usize| {
        if i < count { Next::Node(i) } else { Next::End }
    };
    let edges_from = |from: &str| -> Vec<(usize, &EdgeSpec)> {
        spec.edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.from == from)
            .collect()
    };

    let start_edges = edges_from(START);
    let entry = if start_edges.is_empty() {
        Route::Rules(vec![Rule {
            when: None,
            to: implicit(0),
        }])
    } else {
        edge_route(loaded, &start_edges, &target, index, errors)
    };

    let mut routes = Vec::with_capacity(count);
    for (i, node) in spec.nodes.iter().enumerate() {
        let route = if let Some(goto) = &node.goto {
            Route::Rules(goto_rules(loaded, i, goto, &target, errors))
        } else {
            let edges = edges_from(&node.name);
            if edges.is_empty() {
                Route::Rules(vec![Rule {
                    when: None,
                    to: implicit(i + 1),
                }])
            } else {
                edge_route(loaded, &edges, &target, index, errors)
            }
        };
        routes.push(route);
    }
    (entry, routes)
}

fn goto_rules(
    loaded: &LoadedSpec,
    node: usize,
    goto: &Goto,
    target: &impl Fn(&str) -> Next,
    errors: &mut Vec<SpecError>,
) -> Vec<Rule> {
    match goto {
        Goto::To(to) => vec![Rule {
            when: None,
            to: target(to),
        }],
        Goto::Rules(rules) => rules
            .iter()
            .enumerate()
            .map(|(j, rule)| {
                let when = rule.condition.as_ref().map(|source| {
                    check(
                        loaded,
                        &format!("nodes[{node}].goto[{j}].if"),
                        &loaded.spec.nodes[node].name,
                        source,
                        errors,
                    );
                    Condition {
                        written: source.clone(),
                        expression: source.clone(),
                        expect: true,
                    }
                });
                Rule {
                    when,
                    to: target(&rule.to),
                }
            })
            .collect(),
    }
}

fn edge_route(
    loaded: &LoadedSpec,
    edges: &[(usize, &EdgeSpec)],
    target: &impl Fn(&str) -> Next,
    index: &FxHashMap<&str, usize>,
    errors: &mut Vec<SpecError>,
) -> Route {
    let parallel: Vec<&(usize, &EdgeSpec)> =
        edges.iter().filter(|(_, e)| e.is_parallel()).collect();
    if let Some((_, first)) = parallel.first() {
        // Mixed or inconsistent groups are reported by validation.
        let fan_in = first.fan_in.as_deref().and_then(|f| index.get(f).copied());
        let branches: Vec<usize> = parallel
            .iter()
            .filter_map(|(_, e)| index.get(e.to.as_str()).copied())
            .collect();
        return match fan_in {
            Some(fan_in) => Route::Parallel { branches, fan_in },
            None => Route::Rules(Vec::new()),
        };
    }
    Route::Rules(
        edges
            .iter()
            .map(|(j, edge)| Rule {
                when: edge_condition(loaded, *j, edge, errors),
                to: target(&edge.to),
            })
            .collect(),
    )
}

fn edge_condition(
    loaded: &LoadedSpec,
    edge_index: usize,
    edge: &EdgeSpec,
    errors: &mut Vec<SpecError>,
) -> Option<Condition> {
    let at = format!("edges[{edge_index}]");
    if let Some(condition) = &edge.condition {
        check(
            loaded,
            &format!("{at}.condition.value"),
            &edge.from,
            &condition.value,
            errors,
        );
        let expect = !matches!(edge.when, Some(When::Bool(false)));
        return Some(Condition {
            written: condition.value.clone(),
            expression: condition.value.clone(),
            expect,
        });
    }
    match &edge.when {
        None | Some(When::Bool(true)) => None,
        Some(When::Bool(false)) => Some(Condition {
            written: "false".into(),
            expression: "false".into(),
            expect: true,
        }),
        Some(When::Expression(source)) => {
            let expression = when_expression(source);
            check(
                loaded,
                &format!("{at}.when"),
                &edge.from,
                &expression,
                errors,
            );
            Some(Condition {
                written: source.clone(),
                expression,
                expect: true,
            })
        }
    }
}

/// TEA's `when:` shorthands: `!name` is "state key `name` is falsy", a bare `name` that is not
/// a context variable is "state key `name` is truthy"; anything else is an expression.
fn when_expression(source: &str) -> String {
    let trimmed = source.trim();
    let (negate, rest) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let is_name = !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !rest.starts_with(|c: char| c.is_ascii_digit());
    let reserved = [
        "state",
        "variables",
        "true",
        "false",
        "True",
        "False",
        "none",
        "None",
    ];
    if is_name && !reserved.contains(&rest) {
        let lookup = format!("state.get({rest:?})");
        if negate {
            format!("not {lookup}")
        } else {
            lookup
        }
    } else if negate {
        format!("not ({rest})")
    } else {
        trimmed.to_string()
    }
}

fn check(loaded: &LoadedSpec, at: &str, node: &str, source: &str, errors: &mut Vec<SpecError>) {
    if let Err(message) = template::check_expression(source) {
        errors.push(loaded.error_at(
            at,
            format!("bad condition on the way out of `{node}`: {message}"),
            Some(
                "conditions are Jinja expressions over state and variables, e.g. `state.score > 0.5` or `state[\"ok\"] == True`"
                    .into(),
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::when_expression;

    #[test]
    fn when_shorthands() {
        assert_eq!(
            when_expression("!should_process"),
            "not state.get(\"should_process\")"
        );
        assert_eq!(when_expression("ready"), "state.get(\"ready\")");
        assert_eq!(when_expression("state['count'] > 0"), "state['count'] > 0");
        assert_eq!(when_expression("!state.ok"), "not (state.ok)");
    }
}
