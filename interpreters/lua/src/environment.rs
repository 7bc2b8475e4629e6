//! The Lua environment the code runs in: TEA's sandbox (the standard library without `os`,
//! `io`, `debug`, `loadfile` and `dofile`). Nothing reaches outside the component anyway (it
//! has no WASI grants); the libraries are removed so that code relying on them fails with
//! "attempt to index a nil value (global 'os')", as it does in TEA.

use luars::{Lua, LuaApi, LuaResult, LuaTable, LuaValue, SafeOption, Stdlib, Value};

/// Libraries opened: everything TEA-Rust's mlua keeps, minus `package` (no module files exist
/// inside the component for `require` to load).
const LIBRARIES: &[Stdlib] = &[
    Stdlib::Basic,
    Stdlib::String,
    Stdlib::Table,
    Stdlib::Math,
    Stdlib::Utf8,
    Stdlib::Coroutine,
];

/// Globals of the basic library that read files (`require` has no `package` to load from).
const REMOVED: &[&str] = &["loadfile", "dofile", "require"];

/// `debug.getinfo`, taken out of the `debug` library, which is opened for it and removed
/// again: the driver uses it to find the line of an error raised inside a library function.
pub fn hidden_getinfo(lua: &mut Lua) -> LuaResult<Value> {
    lua.open_stdlib(Stdlib::Debug)?;
    let globals = lua.globals();
    let debug: LuaTable = globals.get("debug")?;
    let getinfo: Value = debug.get("getinfo")?;
    globals.raw_set("debug", LuaValue::nil())?;
    Ok(getinfo)
}

/// A fresh Lua state with TEA's libraries.
pub fn new_lua() -> LuaResult<Lua> {
    let mut lua = Lua::new(SafeOption::default());
    lua.open_stdlibs(LIBRARIES)?;
    let globals = lua.globals();
    for name in REMOVED {
        globals.raw_set(*name, LuaValue::nil())?;
    }
    Ok(lua)
}
