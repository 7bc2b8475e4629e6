//! The Lua environment the code runs in: TEA's sandbox (the standard library without `os`,
//! `io`, `debug`, `loadfile` and `dofile`). Nothing reaches outside the component anyway (it
//! has no WASI grants); the libraries are removed so that code relying on them fails with
//! "attempt to index a nil value (global 'os')", as it does in TEA.

use luars::{Lua, LuaApi, LuaResult, LuaValue, SafeOption, Stdlib};

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
