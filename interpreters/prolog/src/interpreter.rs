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

// The interpreter runs only inside its component (Trealla's engine is an import), so its tests
// are Kettle's end-to-end tests: tests/e2e/inline_prolog.rs.
