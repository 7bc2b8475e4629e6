//! Runs one node's Prolog code as TEA does (`execute_node_code`): the state as `state/2`
//! facts, each clause read and run or asserted in order, a failing goal ending the code
//! quietly, and the `return/2` values as the node's update. One Trealla interpreter serves the
//! component instance (Kettle keeps one per run), so rules and loaded libraries persist
//! between a run's nodes as in TEA; state, returns and facts do not.

use crate::clauses::{Clause, split};
use crate::machine::Machine;
use crate::terms::{quoted_atom, quoted_string, term};
use serde_json::{Map, Value};
use std::cell::RefCell;

/// Why Prolog code did not produce an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrologFailure {
    /// The code is wrong: a syntax error or a Prolog error term (the node's fault).
    Code(String),
    /// The input is not what the interpreter takes (a state that is not an object).
    Input(String),
    /// The engine itself failed (out of memory inside the interpreter, a trap).
    Engine(String),
}

const DRIVER: &str = include_str!("driver.pl");

/// Libraries TEA pre-loads (SWI-Prolog's names); in Trealla lists and apply are built in or
/// load here, and CLP(FD) loads on first use (see [`uses_clpfd`]).
const PRELOADED: &[&str] = &["lists", "apply", "aggregate"];

struct Session {
    machine: Machine,
    clpz: bool,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

fn boot() -> Result<Session, String> {
    let mut machine = Machine::start()?;
    for clause in split(DRIVER) {
        machine.run(&format!(
            "read_term_from_chars({}, T, []), (T = (:- G) -> call(G) ; assertz(T))",
            quoted_string(&clause.text)
        ))?;
    }
    for library in PRELOADED {
        machine.run(&format!("catch(use_module(library({library})), _, true)"))?;
    }
    Ok(Session {
        machine,
        clpz: false,
    })
}

/// Whether code needs CLP(FD)'s operators to be read: Trealla's CLP(Z) takes long to load
/// (seconds), so it loads once per interpreter, and only for code that uses it.
pub fn uses_clpfd(clauses: &[Clause]) -> bool {
    const SIGNS: &[&str] = &[
        "#=",
        "#\\=",
        "#<",
        "#>",
        "..",
        " in ",
        " ins ",
        "label(",
        "labeling(",
        "all_different(",
        "all_distinct(",
        "tuples_in(",
        "clpfd",
        "clpz",
    ];
    clauses
        .iter()
        .any(|c| SIGNS.iter().any(|sign| c.text.contains(sign)))
}

/// Runs `code` against `state` (a JSON object) and returns the update.
pub fn run_prolog(code: &str, state: &Value, node: &str) -> Result<Value, PrologFailure> {
    let Value::Object(fields) = state else {
        return Err(PrologFailure::Input(format!(
            "node `{node}`: the state is not an object"
        )));
    };
    let clauses = split(code);
    SESSION.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(boot().map_err(PrologFailure::Engine)?);
        }
        let session = slot.as_mut().ok_or_else(|| {
            PrologFailure::Engine("the Prolog interpreter did not start".to_string())
        })?;
        let outcome = run_in(session, &clauses, fields, node);
        // An engine failure may leave the interpreter half-way: the next node gets a new one.
        if matches!(outcome, Err(PrologFailure::Engine(_))) {
            *slot = None;
        }
        outcome
    })
}

fn run_in(
    session: &mut Session,
    clauses: &[Clause],
    fields: &Map<String, Value>,
    node: &str,
) -> Result<Value, PrologFailure> {
    let engine = PrologFailure::Engine;
    let mut begin = String::from("kettle_begin");
    for (key, value) in fields {
        begin.push_str(&format!(
            ", assertz(state({}, {}))",
            quoted_atom(key),
            term(value)
        ));
    }
    session.machine.run(&begin).map_err(engine)?;
    if !session.clpz && uses_clpfd(clauses) {
        let loaded = session
            .machine
            .run("use_module(library(clpz))")
            .map_err(engine)?;
        forward(&loaded.stdout, &loaded.stderr);
        session.clpz = true;
    }
    for clause in clauses {
        let output = session
            .machine
            .run(&format!("kettle_clause({})", quoted_string(&clause.text)))
            .map_err(engine)?;
        let (outcome, rest) = marked(&output.stdout);
        forward(&rest, &output.stderr);
        match outcome.as_deref() {
            Some("ok") => {}
            // As in TEA, a goal that fails ends the code; what it returned so far stands.
            Some("failed") => break,
            Some(term) => {
                let (kind, error) = match term.strip_prefix("syntax(") {
                    Some(inner) => ("syntax error", inner.strip_suffix(')').unwrap_or(inner)),
                    None => (
                        "error",
                        term.strip_prefix("error(")
                            .and_then(|t| t.strip_suffix(')'))
                            .unwrap_or(term),
                    ),
                };
                return Err(PrologFailure::Code(format!(
                    "Prolog {kind} in node `{node}`, clause at line {} (`{}`): {error}",
                    clause.line,
                    excerpt(&clause.text)
                )));
            }
            None => {
                return Err(PrologFailure::Engine(format!(
                    "node `{node}`: the Prolog interpreter gave no outcome for the clause at line {} (`{}`){}",
                    clause.line,
                    excerpt(&clause.text),
                    stderr_note(&output.stderr)
                )));
            }
        }
    }
    let output = session.machine.run("kettle_returns").map_err(engine)?;
    let (json, _) = marked(&output.stdout);
    let json = json.ok_or_else(|| {
        PrologFailure::Engine(format!(
            "node `{node}`: the Prolog interpreter did not give the returned values{}",
            stderr_note(&format!("{}{}", output.stdout, output.stderr))
        ))
    })?;
    serde_json::from_str(&json).map_err(|e| {
        PrologFailure::Engine(format!(
            "node `{node}`: the returned values are not JSON ({e}): {}",
            excerpt(&json)
        ))
    })
}

/// The text between the last bytes 2 and 3 of `stdout`, and everything else.
fn marked(stdout: &str) -> (Option<String>, String) {
    match (stdout.rfind('\u{2}'), stdout.rfind('\u{3}')) {
        (Some(start), Some(end)) if start < end => (
            Some(stdout[start + 1..end].to_string()),
            format!("{}{}", &stdout[..start], &stdout[end + 1..]),
        ),
        _ => (None, stdout.to_string()),
    }
}

/// What the code wrote (`write/1`, `format/2`, warnings) goes to the node's own output.
fn forward(stdout: &str, stderr: &str) {
    if !stdout.is_empty() {
        print!("{stdout}");
    }
    if !stderr.is_empty() {
        eprint!("{stderr}");
    }
}

fn stderr_note(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", excerpt(stderr.trim()))
    }
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(code: &str, state: Value) -> Result<Value, PrologFailure> {
        run_prolog(code, &state, "n")
    }

    #[test]
    fn state_in_return_out() {
        let out = run(
            "state(value, V), V2 is V * 2, return(result, V2), return(name, 'héllo \"q\"').",
            json!({"value": 21}),
        );
        assert_eq!(out, Ok(json!({"result": 42, "name": "héllo \"q\""})));
    }
}

/// TEA's own Prolog examples (MIT, The Edge Agent, github.com/fabceolin/the_edge_agent,
/// examples/prolog), run with the inputs and results their files document.
#[cfg(test)]
mod tea_examples {
    use super::*;
    use serde_json::json;

    /// examples/prolog/neurosymbolic/clpfd-scheduling.yaml, node `solve_schedule`.
    const CLPFD_SCHEDULING: &str = r#":- use_module(library(clpfd)).
% Define helper predicates for building schedule entries
make_entry(Task, Start, Duration, [Task, Start, End]) :-
    End is Start + Duration.
% Get input parameters
state(tasks, TaskList),
state(total_time, MaxTime),
[S1, S2, S3, S4] ins 0..MaxTime,
D1 = 2, D2 = 4, D3 = 2, D4 = 1,
S1 + D1 #=< S2,
S2 + D2 #=< S3,
S3 + D3 #=< S4,
S4 + D4 #=< MaxTime,
S1 #= 0,
labeling([ff], [S1, S2, S3, S4]),
E1 is S1 + D1,
E2 is S2 + D2,
E3 is S3 + D3,
E4 is S4 + D4,
Schedule = [
  [design, S1, E1],
  [implement, S2, E2],
  [test, S3, E3],
  [deploy, S4, E4]
],
Makespan is E4,
return(schedule, Schedule),
return(feasible, true),
return(makespan, Makespan),
return(solver_info, 'CLP(FD) solved with first-fail heuristic').
"#;

    /// One test for CLP(FD), since CLP(Z) loads once per interpreter and takes seconds.
    #[test]
    fn clpfd_scheduling_and_the_sum_trealla_cannot_do() {
        let out = run_prolog(
            CLPFD_SCHEDULING,
            &json!({
                "tasks": [{"name": "design", "duration": 2}, {"name": "implement", "duration": 4},
                          {"name": "test", "duration": 2}, {"name": "deploy", "duration": 1}],
                "total_time": 10,
                "must_precede": [["design", "implement"], ["implement", "test"], ["test", "deploy"]],
            }),
            "solve_schedule",
        );
        assert_eq!(
            out,
            Ok(json!({
                "schedule": [["design", 0, 2], ["implement", 2, 6], ["test", 6, 8], ["deploy", 8, 9]],
                "feasible": true,
                "makespan": 9,
                "solver_info": "CLP(FD) solved with first-fail heuristic",
            }))
        );
        // examples/prolog/clpfd-constraints.yaml: Trealla 0.17.10's CLP(Z) raises an
        // instantiation error on a sum of three constrained variables (README.md); the error
        // names the node, the clause and the Prolog error term.
        let out = run_prolog(
            "state(target_sum, T),\nX in 1..10, Y in 1..10, Z in 1..10,\nX + Y + Z #= T, label([X, Y, Z]).",
            &json!({"target_sum": 15}),
            "solve_constraints",
        );
        assert_eq!(
            out,
            Err(PrologFailure::Code(
                "Prolog error in node `solve_constraints`, clause at line 1 (`state(target_sum, T), X in 1..10, Y in 1..10, Z in 1..10, X + Y + Z #= T, label([X, Y, Z])`): error(instantiation_error,number)".into()
            ))
        );
    }

    /// examples/prolog/parity/basic_arithmetic.yaml and comparison_logic.yaml: goals that
    /// succeed and return nothing.
    #[test]
    fn parity_goals_without_returns() {
        assert_eq!(
            run_prolog("X is 10 + 20, Y is X * 2", &json!({}), "compute"),
            Ok(json!({}))
        );
        assert_eq!(
            run_prolog("X = 5, Y = 10, X < Y", &json!({}), "compare"),
            Ok(json!({}))
        );
    }
}

/// What TEA's Prolog sandbox refuses, and code that never ends, contained.
#[cfg(test)]
mod hostile {
    use super::*;
    use serde_json::json;

    fn error_of(code: &str) -> String {
        match run_prolog(code, &json!({}), "h") {
            Err(PrologFailure::Code(message)) => message,
            other => panic!("{code}: expected a Prolog error, got {other:?}"),
        }
    }

    #[test]
    fn no_shell_no_files() {
        // As in TEA, `shell(ls).` alone is a fact (asserted, harmless); called, it does not exist.
        assert!(error_of("true, shell(ls).").contains("existence_error(procedure,shell/1)"));
        assert!(
            error_of("true, shell('rm -rf /', S).").contains("existence_error(procedure,shell/2)")
        );
        let read = error_of("open('/etc/passwd', read, S), read(S, T), return(t, T).");
        assert!(
            read.contains("open/4") && read.contains("/etc/passwd"),
            "{read}"
        );
        let write = error_of("open('out.txt', write, S), write(S, x), close(S).");
        assert!(write.contains("open/4"), "{write}");
        let consult = error_of("true, consult('/etc/passwd').");
        assert!(consult.contains("error"), "{consult}");
    }

    #[test]
    fn syntax_errors_name_the_clause() {
        let message = error_of("ok(1).\nstate(x, X) X.");
        assert!(
            message
                .starts_with("Prolog syntax error in node `h`, clause at line 2 (`state(x, X) X`)"),
            "{message}"
        );
    }

    #[test]
    fn a_failing_goal_ends_the_code_quietly() {
        let out = run_prolog("return(a, 1).\nfail.\nreturn(b, 2).", &json!({}), "f");
        assert_eq!(out, Ok(json!({"a": 1})));
    }

    #[test]
    fn facts_are_the_nodes_rules_persist() {
        let first = run_prolog(
            "likes(ann, tea).\ndouble(X, Y) :- Y is X * 2.\nfindall(W, likes(ann, W), L), return(l, L).",
            &json!({}),
            "a",
        );
        assert_eq!(first, Ok(json!({"l": ["tea"]})));
        let second = run_prolog(
            "findall(W, likes(ann, W), L), double(4, D), return(l, L), return(d, D).",
            &json!({}),
            "b",
        );
        assert_eq!(second, Ok(json!({"l": [], "d": 8})));
    }
}
