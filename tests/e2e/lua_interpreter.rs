//! The Lua interpreter component (`interpreters/lua`), built from source by `kettle run` and run
//! as a plain component node whose `config.code` is TEA-style inline Lua: exact final states for
//! the language's everyday parts, errors that name node and line, and hostile code held by the
//! sandbox's limits.

use crate::support::{Scratch, final_state, repo, stderr};
use serde_json::{Value, json};

/// A YAML node running `code` in the Lua interpreter; `extra` adds node keys (indented by 4).
fn lua_node(name: &str, code: &str, extra: &str) -> String {
    let body: String = code
        .trim_matches('\n')
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect();
    format!(
        "  - name: {name}\n    component: {}\n{extra}    config:\n      code: |\n{body}",
        repo().join("interpreters/lua").display()
    )
}

fn agent(scratch: &Scratch, nodes: &[String]) -> std::path::PathBuf {
    scratch.agent(
        "lua.yaml",
        &format!("name: lua\nnodes:\n{}", nodes.concat()),
    )
}

/// What the engine says of a node that returned a `failed` error with `message`.
fn reported(message: &str) -> String {
    format!("the node reported an error (failed): {message}")
}

/// Runs one Lua node that fails, routed to a handler; returns the state the handler saw.
fn failing(scratch: &Scratch, code: &str, limits: &str) -> Value {
    let path = agent(
        scratch,
        &[
            lua_node("calc", code, &format!("{limits}    on_error: handle\n")),
            "  - name: handle\n    run: {type: expression, value: \"state.error.kind\", output_key: handled}\n"
                .to_string(),
        ],
    );
    final_state(&scratch.run(&path, &["--input", r#"{"x": 1}"#]))
}

#[test]
fn inline_lua_computes_exact_states() {
    let scratch = Scratch::new();
    let nodes = [
        lua_node(
            "arithmetic",
            r#"
return {
  sum = state.a + state.b,
  quotient = state.a / state.b,
  floor_div = state.a // state.b,
  remainder = state.a % state.b,
  power = 2 ^ 10,
  rounded = math.floor(state.price * 100 + 0.5) / 100,
  biggest = math.max(state.a, state.b, 3),
  integer = math.tointeger(8.0),
}
"#,
            "",
        ),
        lua_node(
            "strings",
            r#"
local words = {}
for w in string.gmatch(state.sentence, "%a+") do words[#words + 1] = w:upper() end
local user, domain = string.match(state.email, "^([^@]+)@(.+)$")
local first, last = string.find(state.sentence, "brown", 1, true)
return {
  shout = table.concat(words, "-"),
  formatted = string.format("%s has %d items costing %.2f", user, #state.items, 12.5),
  replaced = (string.gsub(state.sentence, "quick", "slow")),
  domain = domain,
  found = {first, last},
  length = #state.sentence,
  slice = state.sentence:sub(5, 9),
  padded = string.format("[%5s|%-5s]", "ab", "cd"),
  joined = "n=" .. #state.items .. ", ok=" .. tostring(true),
}
"#,
            "",
        ),
        lua_node(
            "loops",
            r#"
local squares, evens, total = {}, {}, 0
for i, v in ipairs(state.items) do
  squares[i] = v * v
  if v % 2 == 0 then table.insert(evens, v) end
end
local n = 0
while n < 5 do n = n + 1; total = total + n end
repeat n = n - 2 until n < 0
local keys = {}
for k in pairs(state.config) do keys[#keys + 1] = k end
table.sort(keys)
local sorted = {table.unpack(state.items)}
table.sort(sorted, function(a, b) return a > b end)
return {squares = squares, evens = evens, total = total, after_repeat = n,
        keys = keys, sorted = sorted, countdown = {10, 8, 6}}
"#,
            "",
        ),
        lua_node(
            "nested",
            r#"
local profile = state.user.profile
profile.visits = profile.visits + 1
profile.tags[#profile.tags + 1] = "lua"
return {user = state.user,
        summary = {name = state.user.name, first_tag = profile.tags[1],
                   missing_is_nil = state.user.missing == nil}}
"#,
            "",
        ),
        lua_node(
            "protected",
            r#"
local ok, err = pcall(function() error({code = 42}) end)
local _, plain = pcall(function() error("boom", 0) end)
local _, located = pcall(function() error("here") end)
local shown = tostring(setmetatable({}, {__tostring = function() return "custom" end}))
return {ok = ok, code = err.code, plain = plain, located = located, shown = shown}
"#,
            "",
        ),
        // Returning nothing leaves the state as it is.
        lua_node("silent", "local unused = state.a * 2\n", ""),
    ];
    let path = agent(&scratch, &nodes);
    let input = json!({
        "a": 7, "b": 2, "price": 4.56789,
        "sentence": "the quick brown fox", "email": "ada@example.org",
        "items": [3, 1, 4, 2],
        "config": {"mode": "fast", "depth": 2, "verbose": false},
        "user": {"name": "Ada", "profile": {"visits": 9, "tags": ["math"]}},
    });
    let output = scratch.run(&path, &["--input", &input.to_string()]);
    let mut expected = input.clone();
    let updates = json!({
        "sum": 9, "quotient": 3.5, "floor_div": 3, "remainder": 1, "power": 1024.0,
        "rounded": 4.57, "biggest": 7, "integer": 8,
        "shout": "THE-QUICK-BROWN-FOX",
        "formatted": "ada has 4 items costing 12.50",
        "replaced": "the slow brown fox",
        "domain": "example.org",
        "found": [11, 15],
        "length": 19,
        "slice": "quick",
        "padded": "[   ab|cd   ]",
        "joined": "n=4, ok=true",
        "squares": [9, 1, 16, 4], "evens": [4, 2], "total": 15, "after_repeat": -1,
        "keys": ["depth", "mode", "verbose"], "sorted": [4, 3, 2, 1], "countdown": [10, 8, 6],
        "user": {"name": "Ada", "profile": {"visits": 10, "tags": ["math", "lua"]}},
        "summary": {"name": "Ada", "first_tag": "math", "missing_is_nil": true},
        // luars keeps the `=` of the chunk name in `error`'s position (Lua 5.4 shows `lua:3:`).
        "ok": false, "code": 42, "plain": "boom", "located": "=lua:3: here", "shown": "custom",
    });
    for (key, value) in updates.as_object().expect("an object") {
        expected[key] = value.clone();
    }
    assert_eq!(final_state(&output), expected);
}

#[test]
fn lua_errors_name_the_node_the_line_and_the_message() {
    let scratch = Scratch::new();
    // Without a handler, the run fails and says why.
    let path = agent(
        &scratch,
        &[lua_node(
            "calc",
            "local total = state.x\nlocal extra = state.missing\nreturn {total = total + extra}\n",
            "",
        )],
    );
    let output = scratch.run(&path, &["--input", r#"{"x": 1}"#]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("node `calc` failed (failed)"), "{err}");
    assert!(
        err.contains(
            "Lua error in node `calc`, line 3: attempt to perform arithmetic on a nil value (local 'extra')"
        ),
        "{err}"
    );

    // An error the code raises is a `failed` node error, routed like any other.
    let state = failing(
        &scratch,
        "local total = 1\nlocal limit = 0\nerror('the total is wrong')\n",
        "",
    );
    assert_eq!(state["handled"], "failed", "{state}");
    assert_eq!(
        state["error"]["message"],
        reported("Lua error in node `calc`, line 3: the total is wrong"),
        "{state}"
    );

    // A syntax error names its line too.
    let state = failing(&scratch, "local a = 1\nif a then\n  a = 2\n", "");
    assert_eq!(state["handled"], "failed", "{state}");
    let message = state["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&reported(
            "Lua error in node `calc`, line 4: syntax error: 'end' expected"
        )),
        "{state}"
    );

    // What JSON cannot hold is refused by name.
    let state = failing(&scratch, "return {f = print}\n", "");
    assert_eq!(
        state["error"]["message"],
        reported(
            "Lua error in node `calc`: the returned table.f is a function, which cannot go into the state (only nil, booleans, numbers, strings and tables can)"
        ),
        "{state}"
    );
}

#[test]
fn hostile_lua_is_held_by_the_sandbox() {
    let scratch = Scratch::new();
    let state = failing(
        &scratch,
        "local n = 0\nwhile true do n = n + 1 end\n",
        "    limits: {timeout_ms: 1000}\n",
    );
    assert_eq!(state["handled"], "limit.timeout_ms", "{state}");

    let state = failing(
        &scratch,
        "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end\n",
        "    limits: {memory_mb: 64}\n",
    );
    assert_eq!(state["handled"], "limit.memory_mb", "{state}");

    for (code, global) in [
        ("os.execute('touch /tmp/pwned')", "os"),
        ("local f = io.open('/etc/passwd')", "io"),
        ("debug.sethook()", "debug"),
    ] {
        let state = failing(&scratch, code, "");
        assert_eq!(state["handled"], "failed", "{code}: {state}");
        assert_eq!(
            state["error"]["message"],
            reported(&format!(
                "Lua error in node `calc`, line 1: attempt to index a nil value (global '{global}')"
            )),
            "{code}: {state}"
        );
    }
    for code in [
        "dofile('/etc/passwd')",
        "loadfile('/etc/passwd')",
        "require('os')",
    ] {
        let state = failing(&scratch, code, "");
        assert_eq!(state["handled"], "failed", "{code}: {state}");
        assert!(
            state["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("attempt to call a nil value")),
            "{code}: {state}"
        );
    }
}
