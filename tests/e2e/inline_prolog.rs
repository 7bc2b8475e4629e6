//! TEA's inline Prolog (`language: prolog`, or a `% prolog` first line) run by Kettle's Prolog
//! interpreter component (Trealla Prolog's engine composed into it, compiled by wasmtime), which `kettle` writes into its cache,
//! completes with Trealla's module from npm and builds: TEA's own examples with their documented
//! results, errors naming the node, the clause and the Prolog error term, and hostile Prolog
//! contained by the node's limits and the interpreter's missing file system.

use crate::support::{Scratch, assert_whole_trace, final_state, span, stderr};
use serde_json::json;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The tests here take turns: the first builds the interpreter, the next finds it built.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// TEA's examples/prolog/parity/basic-state-access.yaml's reads and
/// examples/prolog/clpfd-constraints.yaml's Lua validation (MIT, The Edge Agent), around a
/// Prolog node that returns values of every JSON type.
const AGENT: &str = r#"
name: tea-inline-prolog
nodes:
  - name: verify_state_access
    language: prolog
    run: |
      state(str_value, Str),
      Str = 'hello world',
      state(int_value, Int),
      Int = 42,
      state(float_value, Float),
      Float > 3.14,
      Float < 3.15,
      state(bool_value, Bool),
      Bool = true,
      state(null_value, Null),
      Null = null,
      state(list_value, List),
      length(List, 5),
      return(test_passed, true).
  - name: derive
    run: |
      % prolog
      double(X, Y) :- Y is X * 2.
      state(int_value, I), double(I, D),
      state(list_value, [_, Two | _]),
      atom_length(Two, N),
      msort([cc, aa, bb], Sorted),
      return(doubled, D), return(two_length, N), return(sorted, Sorted),
      return(half, 2.5), return(nothing, null), return(text, "chars"),
      return(pair, a-1).
  - name: validate
    language: lua
    run: |
      return { is_valid = state.doubled == 84 and state.test_passed }
edges:
  - {from: __start__, to: verify_state_access}
  - {from: verify_state_access, to: derive}
  - {from: derive, to: validate}
  - {from: validate, to: __end__}
"#;

#[test]
fn tea_prolog_examples_reach_their_documented_state_in_one_trace() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent("prolog.yaml", AGENT);
    let input = json!({
        "str_value": "hello world", "int_value": 42, "float_value": 3.145,
        "bool_value": true, "null_value": null, "list_value": [1, "two", 3.0, true, null],
        "test_passed": false
    });
    let output = scratch.run(&agent, &["--input", &input.to_string()]);
    let mut expected = input.clone();
    for (key, value) in json!({
        "test_passed": true, "doubled": 84, "two_length": 3, "sorted": ["aa", "bb", "cc"],
        "half": 2.5, "nothing": null, "text": "chars", "pair": "a-1", "is_valid": true
    })
    .as_object()
    .expect("object")
    {
        expected[key] = value.clone();
    }
    assert_eq!(final_state(&output), expected, "{}", stderr(&output));
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    for node in ["verify_state_access", "derive", "validate"] {
        let node_span = span(&spans, &format!("node {node}"));
        assert_eq!(
            node_span.parent_span_id.as_deref(),
            Some(root.span_id.as_str())
        );
        assert_eq!(node_span.status.code, "ok");
    }
}

/// TEA's examples/prolog/neurosymbolic/clpfd-scheduling.yaml (MIT), with its documented output.
const SCHEDULING: &str = r#"
name: clpfd-scheduling-agent
nodes:
  - name: solve_schedule
    language: prolog
    run: |
      :- use_module(library(clpfd)).
      make_entry(Task, Start, Duration, [Task, Start, End]) :-
          End is Start + Duration.
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

#[test]
fn tea_clpfd_scheduling_runs_on_clpz() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent("scheduling.yaml", SCHEDULING);
    let output = scratch.run(&agent, &["--input", r#"{"total_time": 10, "tasks": []}"#]);
    assert_eq!(
        final_state(&output),
        json!({
            "total_time": 10, "tasks": [],
            "schedule": [["design", 0, 2], ["implement", 2, 6], ["test", 6, 8], ["deploy", 8, 9]],
            "feasible": true,
            "makespan": 9,
            "solver_info": "CLP(FD) solved with first-fail heuristic",
        }),
        "{}",
        stderr(&output)
    );
}

/// TEA's examples/prolog/clpfd-constraints.yaml (MIT), with the first solution SWI-Prolog labels.
/// Trealla 0.17.10's CLP(Z) alone raises instantiation_error on its sum of three variables; the
/// driver rewrites such linear constraints into scalar_product/4, in rules too.
const SUM_OF_THREE: &str = r#"
name: clpfd-constraints-agent
nodes:
  - name: solve_constraints
    language: prolog
    run: |
      :- use_module(library(clpfd)).
      ordered_sum(X, Y, Z, Target) :- X + Y + Z #= Target, X #< Y, Y #< Z.
      state(min_val, Min),
      state(max_val, Max),
      state(target_sum, Target),
      X in Min..Max,
      Y in Min..Max,
      Z in Min..Max,
      X + Y + Z #= Target,
      X #< Y,
      Y #< Z,
      label([X, Y, Z]),
      return(solution_x, X),
      return(solution_y, Y),
      return(solution_z, Z),
      [A, B, C] ins 1..9, ordered_sum(A, B, C, 2 * Target - 6), 2 * A - B + 3 * C #>= 30,
      once(label([A, B, C])), return(by_rule, [A, B, C]).
  - name: validate
    language: lua
    run: |
      local x = state.solution_x or 0
      local y = state.solution_y or 0
      local z = state.solution_z or 0
      local target = state.target_sum or 0
      local is_valid = (x + y + z == target) and (x < y) and (y < z)
      return { is_valid = is_valid }
"#;

#[test]
fn tea_clpfd_sums_of_three_variables_run() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent("sum3.yaml", SUM_OF_THREE);
    let input = r#"{"min_val": 1, "max_val": 10, "target_sum": 15}"#;
    let output = scratch.run(&agent, &["--input", input]);
    assert_eq!(
        final_state(&output),
        json!({
            "min_val": 1, "max_val": 10, "target_sum": 15,
            "solution_x": 1, "solution_y": 4, "solution_z": 10,
            "by_rule": [7, 8, 9],
            "is_valid": true,
        }),
        "{}",
        stderr(&output)
    );
}

#[test]
fn prolog_errors_name_node_clause_and_term_and_hostile_prolog_is_contained() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let run = |name: &str, limits: &str, code: &str| {
        let indented: String = code.lines().map(|l| format!("      {l}\n")).collect();
        let agent = scratch.agent(
            &format!("{name}.yaml"),
            &format!(
                "name: {name}\nnodes:\n  - name: {name}\n    language: prolog\n{limits}    run: |\n{indented}"
            ),
        );
        let output = scratch.run(&agent, &[]);
        assert!(!output.status.success(), "{name} must fail");
        stderr(&output)
    };
    let text = run("broken", "", "return(a, 1).\nX is foo + 1.");
    assert!(
        text.contains("Prolog error in node `broken`, clause at line 2 (`X is foo + 1`)")
            && text.contains("type_error(evaluable,foo/0)"),
        "{text}"
    );
    let text = run("syntax", "", "return(a 1).");
    assert!(
        text.contains("Prolog syntax error in node `syntax`, clause at line 1"),
        "{text}"
    );
    let text = run(
        "shell",
        "",
        "true, shell('touch /tmp/kettle-prolog-was-here').",
    );
    assert!(
        text.contains("existence_error(procedure,shell/1)"),
        "{text}"
    );
    let text = run("files", "", "open('/etc/passwd', read, S), read(S, T).");
    assert!(
        text.contains("existence_error(source_sink,'/etc/passwd')"),
        "{text}"
    );
    let text = run(
        "shell2",
        "",
        "true, shell('touch /tmp/kettle-prolog-was-here', S).",
    );
    assert!(
        text.contains("existence_error(procedure,shell/2)"),
        "{text}"
    );
    assert!(!std::path::Path::new("/tmp/kettle-prolog-was-here").exists());
    let text = run(
        "write",
        "",
        "open('out.txt', write, S), write(S, x), close(S).",
    );
    assert!(text.contains("open/4"), "{text}");
    let text = run("consult", "", "true, consult('/etc/passwd').");
    assert!(text.contains("Prolog error in node `consult`"), "{text}");
    let text = run(
        "spin",
        "    limits: {timeout_ms: 3000}\n",
        "true, repeat, fail.",
    );
    assert!(text.contains("limit.timeout_ms"), "{text}");
    // Infinite recursion meets the memory limit (the default 256 MiB) in a second or two.
    let text = run("recurse", "", "recurse :- recurse.\ntrue, recurse.");
    assert!(
        text.contains("limit.memory_mb") || text.contains("limit.timeout_ms"),
        "{text}"
    );
    let text = run(
        "grow",
        "    limits: {timeout_ms: 120000}\n",
        "grow(L) :- grow([L|L]).\ntrue, numlist(1, 100000000, L), length(L, N), return(n, N).",
    );
    assert!(
        text.contains("grow") && (text.contains("memory") || text.contains("resource_error")),
        "{text}"
    );
}

/// TEA's clause semantics (its prolog_runtime.py): rules stay for the run's next nodes, facts
/// are the node's own, goals without returns succeed with an empty update
/// (examples/prolog/parity/basic_arithmetic.yaml), a failing goal ends the code quietly.
#[test]
fn prolog_clauses_behave_as_in_tea() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "clauses.yaml",
        r#"
name: clauses
nodes:
  - name: first
    language: prolog
    run: |
      likes(ann, tea).
      double(X, Y) :- Y is X * 2.
      findall(W, likes(ann, W), L), return(l, L), return(name, 'héllo "q"').
  - name: second
    language: prolog
    run: |
      findall(W, likes(ann, W), L), double(4, D), return(l2, L), return(d, D).
  - name: arithmetic
    language: prolog
    run: |
      X is 10 + 20, Y is X * 2.
  - name: stops
    language: prolog
    run: |
      return(a, 1).
      fail.
      return(b, 2).
edges:
  - {from: __start__, to: first}
  - {from: first, to: second}
  - {from: second, to: arithmetic}
  - {from: arithmetic, to: stops}
  - {from: stops, to: __end__}
"#,
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(
        final_state(&output),
        json!({"l": ["tea"], "name": "héllo \"q\"", "l2": [], "d": 8, "a": 1}),
        "{}",
        stderr(&output)
    );
}
