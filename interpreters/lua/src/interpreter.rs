//! Runs one piece of inline Lua against the state: compile, call with `state`, turn what it
//! returns into a state update, and put every failure in words that name the node and the line.

use crate::{convert, environment};
use luars::{Lua, LuaApi, LuaError, LuaValueKind, Value};
use serde_json::Value as Json;

/// Calls the user's chunk under `pcall` and turns any error value into a string, so that a
/// failure always reaches the host as "chunk:line: message" (or just the message).
const DRIVER: &str = r#"
local chunk, state, getinfo = ...
-- Errors raised inside library functions carry no position in luars: add the line of the
-- user's code that called them, found on the stack while it is still there.
local function locate(message)
  if type(message) ~= "string" or message:find("^=?lua:%d+:") then return message end
  for level = 2, 200 do
    local info = getinfo(level, "Sl")
    if info == nil then break end
    if info.source == "=lua" and (info.currentline or 0) > 0 then
      return "lua:" .. info.currentline .. ": " .. message
    end
  end
  return message
end
local ok, result = xpcall(chunk, locate, state)
if ok then return true, result end
if type(result) == "string" then return false, result end
local meta = getmetatable(result)
if meta and meta.__tostring then return false, tostring(result) end
return false, "(error object is a " .. type(result) .. " value)"
"#;

/// The chunk name Lua shows in front of line numbers (`=` keeps it verbatim).
const CHUNK: &str = "lua";

/// Why the code gave no state update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LuaFailure {
    /// The code did not compile, raised an error, or returned something that is not a table
    /// of state updates.
    Code(String),
    /// The state could not be handed to Lua.
    Input(String),
}

/// Runs `code` with `state` and returns its state update (`{}` for `nil`).
pub fn run_lua(code: &str, state: &Json, node: &str) -> Result<Json, LuaFailure> {
    let fail = |line: Option<u32>, message: &str| LuaFailure::Code(describe(node, line, message));
    let mut lua = environment::new_lua().map_err(|e| LuaFailure::Input(e.to_string()))?;
    // On the first line, so that line numbers in errors are those of `code`.
    let source = format!("local state = ...; {code}");
    let chunk = match lua
        .load(&source)
        .set_name(format!("={CHUNK}"))
        .into_function()
    {
        Ok(chunk) => chunk,
        Err(error) => {
            let message = error_text(&mut lua, error);
            let (line, message) = split_location(&message);
            return Err(fail(line, &format!("syntax error: {message}")));
        }
    };
    let state_value = convert::to_lua(&mut lua, state).map_err(|e| {
        LuaFailure::Input(format!("node `{node}`: cannot hand the state to Lua: {e}"))
    })?;
    let driver = lua
        .load(DRIVER)
        .set_name("driver")
        .into_function()
        .map_err(|e| LuaFailure::Input(format!("the Lua driver does not compile: {e}")))?;
    let getinfo = environment::hidden_getinfo(&mut lua)
        .map_err(|e| LuaFailure::Input(format!("cannot prepare the Lua driver: {e}")))?;
    let (ok, result): (bool, Value) = match driver.call((chunk, state_value, getinfo)) {
        Ok(values) => values,
        Err(error) => {
            let message = error_text(&mut lua, error);
            let (line, message) = split_location(&message);
            return Err(fail(line, message));
        }
    };
    if !ok {
        let message = result.as_string().unwrap_or_default();
        let (line, message) = split_location(&message);
        return Err(fail(line, message));
    }
    update(&result).map_err(|message| fail(None, &message))
}

/// The state update a returned value stands for.
fn update(result: &Value) -> Result<Json, String> {
    let json = |value| convert::to_json(value, "the returned table").map_err(|p| p.0);
    match result.kind() {
        LuaValueKind::Nil => Ok(Json::Object(Default::default())),
        LuaValueKind::Table => match json(result)? {
            Json::Object(fields) => Ok(Json::Object(fields)),
            Json::Array(_) => Err(
                "the code returned a list; return a table of state keys, e.g. `return {items = list}`"
                    .to_string(),
            ),
            other => Err(format!("the code returned {other}, not a table")),
        },
        _ => Err(format!(
            "the code returned a {}; return a table of state keys (e.g. `return {{result = x}}`) or nothing",
            result.type_name()
        )),
    }
}

/// The message Lua keeps for `error`.
fn error_text(lua: &mut Lua, error: LuaError) -> String {
    let full = lua.get_error_message(error);
    if full.message.is_empty() {
        error.to_string()
    } else {
        full.message
    }
}

/// Splits "lua:12: message" into line 12 and "message"; other text has no line.
fn split_location(message: &str) -> (Option<u32>, &str) {
    // luars shows the chunk name of `error("...")` positions without dropping the `=`.
    let unprefixed = message.strip_prefix('=').unwrap_or(message);
    let Some(rest) = unprefixed
        .strip_prefix(CHUNK)
        .and_then(|r| r.strip_prefix(':'))
    else {
        return (None, message);
    };
    let Some((line, text)) = rest.split_once(':') else {
        return (None, message);
    };
    match line.parse() {
        Ok(line) => (Some(line), text.trim_start()),
        Err(_) => (None, message),
    }
}

fn describe(node: &str, line: Option<u32>, message: &str) -> String {
    match line {
        Some(line) => format!("Lua error in node `{node}`, line {line}: {message}"),
        None => format!("Lua error in node `{node}`: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(code: &str, state: Json) -> Result<Json, LuaFailure> {
        run_lua(code, &state, "n")
    }

    fn error(code: &str) -> String {
        match run(code, json!({})) {
            Err(LuaFailure::Code(message)) => message,
            other => panic!("expected a code failure, got {other:?}"),
        }
    }

    #[test]
    fn returns_the_update_and_reads_state() {
        let update = run(
            "return {double = state.x * 2, name = state.name .. '!', n = #state.items}",
            json!({"x": 21, "name": "a", "items": [1, 2, 3]}),
        )
        .unwrap();
        assert_eq!(update, json!({"double": 42, "name": "a!", "n": 3}));
    }

    #[test]
    fn nil_and_empty_tables_change_nothing() {
        assert_eq!(run("local x = 1", json!({"a": 1})).unwrap(), json!({}));
        assert_eq!(run("return {}", json!({"a": 1})).unwrap(), json!({}));
    }

    #[test]
    fn arrays_and_nested_tables_round_trip() {
        let state = json!({"deep": {"list": [1, 2.5, "x", true, {"k": null}], "empty": {}}});
        let update = run("return {copy = state.deep}", state).unwrap();
        assert_eq!(
            update,
            json!({"copy": {"list": [1, 2.5, "x", true, {}], "empty": {}}})
        );
    }

    #[test]
    fn errors_name_the_node_and_line() {
        assert_eq!(
            error("local a = 1\nlocal b = nil\nreturn {c = a + b}"),
            "Lua error in node `n`, line 3: attempt to perform arithmetic on a nil value (local 'b')"
        );
        assert_eq!(
            error("\n\nerror('custom failure')"),
            "Lua error in node `n`, line 3: custom failure"
        );
        assert_eq!(
            error("error({code = 1})"),
            "Lua error in node `n`: (error object is a table value)"
        );
        assert_eq!(
            error("return 5"),
            "Lua error in node `n`: the code returned a number; return a table of state keys (e.g. `return {result = x}`) or nothing"
        );
    }

    #[test]
    fn errors_inside_library_functions_name_the_line() {
        assert_eq!(
            error("local s = state.missing\n\nreturn {s = string.lower(s)}"),
            "Lua error in node `n`, line 3: bad argument #1 to 'string.lower' (string expected)"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let message = error("local x = 1\nif x then\nreturn {}");
        assert!(
            message.starts_with("Lua error in node `n`, line 3: syntax error:"),
            "{message}"
        );
    }

    #[test]
    fn os_io_and_file_loading_are_absent() {
        for global in ["os", "io", "debug", "loadfile", "dofile", "require"] {
            let update = run(&format!("return {{t = type({global})}}"), json!({})).unwrap();
            assert_eq!(update, json!({"t": "nil"}), "{global}");
        }
        assert_eq!(
            error("os.execute('true')"),
            "Lua error in node `n`, line 1: attempt to index a nil value (global 'os')"
        );
    }

    #[test]
    fn values_json_cannot_hold_are_refused() {
        assert!(error("return {f = print}").contains("the returned table.f is a function"));
        assert!(error("return {x = 0/0}").contains("the returned table.x is NaN"));
        assert!(error("local t = {} t.self = t return {t = t}").contains("nests tables"));
    }
}
