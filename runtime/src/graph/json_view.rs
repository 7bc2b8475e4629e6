//! A JSON value as templates and expressions see it, without copying it into minijinja's
//! values: a mapping or list is a view into one shared tree, and only what a template reads
//! (a key, an item, a length) is converted, when it reads it. A fan-in node's
//! `parallel_results | length` over sixteen 200 KB branch states reads sixteen items' count,
//! not 3 MB of strings.

use minijinja::Value as Jinja;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value;
use std::sync::Arc;

/// `root` as minijinja sees it: a view when it is a mapping or a list, else its value.
pub fn view(root: Arc<Value>) -> Jinja {
    match &*root {
        Value::Object(_) | Value::Array(_) => Jinja::from_object(JsonView {
            root,
            path: Arc::from([]),
        }),
        scalar => scalar_value(scalar),
    }
}

/// One step from a container to its child.
#[derive(Debug, Clone)]
enum Step {
    Key(Arc<str>),
    Index(usize),
}

/// The mapping or list at `path` in `root`.
#[derive(Debug)]
struct JsonView {
    root: Arc<Value>,
    path: Arc<[Step]>,
}

impl JsonView {
    /// The value the view stands for. A view is only made for a path that exists, in a tree
    /// that never changes, so the fallback is never taken.
    fn node(&self) -> &Value {
        let mut node = &*self.root;
        for step in self.path.iter() {
            let next = match (step, node) {
                (Step::Key(key), Value::Object(map)) => map.get(&**key),
                (Step::Index(index), Value::Array(items)) => items.get(*index),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return &Value::Null,
            }
        }
        node
    }

    /// The child at `step`, whose value is `child`.
    fn child(&self, step: Step, child: &Value) -> Jinja {
        match child {
            Value::Object(_) | Value::Array(_) => {
                let mut path = Vec::with_capacity(self.path.len() + 1);
                path.extend(self.path.iter().cloned());
                path.push(step);
                Jinja::from_object(JsonView {
                    root: self.root.clone(),
                    path: path.into(),
                })
            }
            scalar => scalar_value(scalar),
        }
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Jinja) -> Option<Jinja> {
        match self.node() {
            Value::Object(map) => {
                let key = key.as_str()?;
                let child = map.get(key)?;
                Some(self.child(Step::Key(Arc::from(key)), child))
            }
            Value::Array(items) => {
                let index = key.as_usize()?;
                let child = items.get(index)?;
                Some(self.child(Step::Index(index), child))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Value::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Jinja::from(&**k)).collect())
            }
            Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node() {
            Value::Object(map) => Some(map.len()),
            Value::Array(items) => Some(items.len()),
            _ => Some(0),
        }
    }
}

/// A scalar as minijinja's serde support converts it.
fn scalar_value(value: &Value) -> Jinja {
    match value {
        Value::Null => Jinja::from(()),
        Value::Bool(b) => Jinja::from(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Jinja::from(u)
            } else if let Some(i) = n.as_i64() {
                Jinja::from(i)
            } else {
                Jinja::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Jinja::from(s.as_str()),
        // Containers are views; `view` and `child` never pass one here.
        container => Jinja::from_serialize(container),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The view and minijinja's own conversion of `value` give the same answers to the same
    /// expressions.
    fn same(value: Value, expressions: &[&str]) {
        let env = minijinja::Environment::new();
        let viewed = view(Arc::new(value.clone()));
        for source in expressions {
            let expression = env.compile_expression(source).expect("compiles");
            let by_view = expression.eval(minijinja::context! { v => viewed.clone() });
            let by_serde =
                expression.eval(minijinja::context! { v => Jinja::from_serialize(&value) });
            match (by_view, by_serde) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.to_string(), b.to_string(), "{source}");
                    assert_eq!(
                        serde_json::to_value(&a).ok(),
                        serde_json::to_value(&b).ok(),
                        "{source}"
                    );
                }
                (a, b) => assert_eq!(a.is_err(), b.is_err(), "{source}: {a:?} against {b:?}"),
            }
        }
    }

    #[test]
    fn a_view_answers_as_the_converted_value_does() {
        let value = json!({
            "n": 3, "neg": -2, "big": 18446744073709551615u64, "x": 1.5, "s": "text",
            "none": null, "yes": true, "empty": {}, "list": [1, "two", {"three": [3]}, null],
            "nested": {"a": {"b": {"c": "deep"}}, "z": [], "k": {"1": "one"}}
        });
        same(
            value,
            &[
                "v",
                "v.n + 1",
                "v['n'] * 2",
                "v.neg",
                "v.big",
                "v.x",
                "v.s ~ '!'",
                "v.none",
                "v.none is none",
                "v.yes and not v.empty",
                "v.list",
                "v.list[1]",
                "v.list[-1]",
                "v.list[2].three[0]",
                "v.list | length",
                "v | length",
                "v.list | first",
                "v.list | last",
                "v.list[1:3]",
                "v.nested.a.b.c",
                "v.nested.a.b.missing",
                "v.missing",
                "v.nested.z | length",
                "'n' in v",
                "'q' in v",
                "2 in v.list[2].three",
                "v.list | tojson",
                "v | tojson",
                "v.nested | dictsort",
                "v.nested.a == {'b': {'c': 'deep'}}",
                "v.list[:2] == [1, 'two']",
                "v.nested.k['1']",
                "v.list | reverse | list",
                "v.empty is mapping",
                "v.list is sequence",
                "v.nested.a is mapping",
                "v.list | map('string') | list",
                "v.nested | items | list",
            ],
        );
    }

    #[test]
    fn scalars_and_lists_at_the_root() {
        same(json!(7), &["v + 1"]);
        same(
            json!([1, 2, 3]),
            &["v | sum", "v[0]", "v | length", "v | select('odd') | list"],
        );
    }
}
