//! JSON ⇄ Lua values, as TEA-Rust converts them (`json_to_lua`, `lua_to_json` in its
//! `lua_runtime.rs`): objects and arrays become tables (arrays 1-based), integers stay integers,
//! `null` is `nil`; a table whose keys are all positive integers goes back as an array (holes
//! as `null`), any other table as an object.

use luars::{Lua, LuaApi, LuaError, LuaTable, LuaValue, LuaValueKind, Value};
use serde_json::{Map, Number, Value as Json};
use std::fmt;

/// Why a value cannot cross between JSON and Lua, for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<LuaError> for Problem {
    fn from(error: LuaError) -> Self {
        Self(error.to_string())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How deep a returned table may nest: deeper is taken for a table that contains itself.
const MAX_DEPTH: usize = 200;

/// Builds the Lua value of a JSON value.
pub fn to_lua(lua: &mut Lua, json: &Json) -> Result<Value, Problem> {
    Ok(match json {
        Json::Null => lua.pack(LuaValue::nil())?,
        Json::Bool(b) => lua.pack(*b)?,
        Json::Number(n) => match n.as_i64() {
            Some(i) => lua.pack(i)?,
            None => lua.pack(n.as_f64().unwrap_or(f64::NAN))?,
        },
        Json::String(s) => lua.pack(s.as_str())?,
        Json::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                let value = to_lua(lua, item)?;
                table.raw_set(i as i64 + 1, value)?;
            }
            lua.pack(table)?
        }
        Json::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, item) in fields {
                let value = to_lua(lua, item)?;
                table.raw_set(key.as_str(), value)?;
            }
            lua.pack(table)?
        }
    })
}

/// The JSON value of a Lua value; `path` names it in errors (`result.items[3]`).
pub fn to_json(value: &Value, path: &str) -> Result<Json, Problem> {
    to_json_at(value, path, 0)
}

fn to_json_at(value: &Value, path: &str, depth: usize) -> Result<Json, Problem> {
    Ok(match value.kind() {
        LuaValueKind::Nil => Json::Null,
        LuaValueKind::Boolean => Json::Bool(value.get::<bool>()?),
        LuaValueKind::Integer => Json::from(value.get::<i64>()?),
        LuaValueKind::Float => {
            let f = value.get::<f64>()?;
            Json::Number(Number::from_f64(f).ok_or_else(|| {
                format!("{path} is {f}, which JSON cannot hold (only finite numbers)")
            })?)
        }
        LuaValueKind::String => Json::String(
            value
                .as_string()
                .ok_or_else(|| format!("{path} is a string that is not valid UTF-8"))?,
        ),
        LuaValueKind::Table => {
            if depth >= MAX_DEPTH {
                return Err(Problem(format!(
                    "{path} nests tables more than {MAX_DEPTH} deep (does a table contain itself?)"
                )));
            }
            let table = value
                .as_table()
                .ok_or_else(|| format!("{path} is not a readable table"))?;
            table_to_json(&table, path, depth + 1)?
        }
        _ => {
            return Err(Problem(format!(
                "{path} is a {}, which cannot go into the state (only nil, booleans, numbers, strings and tables can)",
                value.type_name()
            )));
        }
    })
}

fn table_to_json(table: &LuaTable, path: &str, depth: usize) -> Result<Json, Problem> {
    let pairs: Vec<(Value, Value)> = table.pairs()?;
    let max_index = pairs
        .iter()
        .map(|(key, _)| match key.kind() {
            LuaValueKind::Integer => key.get::<i64>().ok().filter(|i| *i > 0),
            _ => None,
        })
        .try_fold(0i64, |max, index| index.map(|i| max.max(i)));
    if let Some(max_index) = max_index.filter(|max| *max > 0) {
        // A sparse table with a huge index would otherwise become a huge array of nulls.
        if max_index as usize > pairs.len().saturating_mul(2).max(1024) {
            return Err(Problem(format!(
                "{path} has index {max_index} but only {} entries: make it a table with string keys",
                pairs.len()
            )));
        }
        let mut items = vec![Json::Null; max_index as usize];
        for (key, item) in &pairs {
            let index = key.get::<i64>()? as usize;
            items[index - 1] = to_json_at(item, &format!("{path}[{index}]"), depth)?;
        }
        return Ok(Json::Array(items));
    }
    let mut fields = Map::new();
    for (key, item) in &pairs {
        let name = match key.kind() {
            LuaValueKind::String => key
                .as_string()
                .ok_or_else(|| format!("{path} has a key that is not valid UTF-8"))?,
            LuaValueKind::Integer => key.get::<i64>()?.to_string(),
            LuaValueKind::Float => key.get::<f64>()?.to_string(),
            _ => {
                return Err(Problem(format!(
                    "{path} has a {} as a key; JSON objects have string keys",
                    key.type_name()
                )));
            }
        };
        let child = format!("{path}.{name}");
        fields.insert(name, to_json_at(item, &child, depth)?);
    }
    Ok(Json::Object(fields))
}
