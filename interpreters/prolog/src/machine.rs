//! One Trealla Prolog interpreter: its WebAssembly module (npm's `trealla`, pinned) run by wasmi
//! inside this component, with the WASI functions of `wasi.rs`. It answers one thing: run a
//! goal, and give back what the goal wrote on standard output.

use crate::wasi::{self, Host};
use wasmi::{Engine, Error, Extern, Instance, Linker, Memory, Module, Store, TypedFunc, Val};

/// Trealla's WebAssembly module (`tpl.wasm`, with its pre-initialized heap).
static TREALLA: &[u8] = include_bytes!(env!("KETTLE_TREALLA_WASM"));

/// A live Trealla interpreter.
pub struct Machine {
    store: Store<Host>,
    memory: Memory,
    pl: i32,
    realloc: TypedFunc<(i32, i32, i32, i32), i32>,
    free: TypedFunc<(i32, i32, i32), ()>,
    query: TypedFunc<(i32, i32, i32, i32), i32>,
}

/// What a goal wrote.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

fn engine_error(what: &str, error: impl std::fmt::Display) -> String {
    format!("the Prolog engine could not {what}: {error}")
}

impl Machine {
    /// Instantiates Trealla and starts its global interpreter.
    pub fn start() -> Result<Self, String> {
        let engine = Engine::default();
        let module = Module::new(&engine, TREALLA).map_err(|e| engine_error("load", e))?;
        let mut store = Store::new(&engine, Host::default());
        let mut linker = Linker::<Host>::new(&engine);
        wasi::link(&mut linker).map_err(|e| engine_error("link WASI", e))?;
        // Trealla's calls into a JavaScript host (`'$host_call'/2`) have no host here.
        for import in module.imports() {
            if import.module() == "trealla"
                && let wasmi::ExternType::Func(ty) = import.ty()
            {
                let name = import.name().to_string();
                linker
                    .func_new(
                        "trealla",
                        import.name(),
                        ty.clone(),
                        move |_, _: &[Val], _: &mut [Val]| {
                            Err(Error::new(format!("`trealla.{name}` has no host here")))
                        },
                    )
                    .map_err(|e| engine_error("link", e))?;
            }
        }
        let instance = linker
            .instantiate_and_start(&mut store, &module)
            .map_err(|e| engine_error("instantiate", e))?;
        let start: TypedFunc<(), ()> = func(&store, &instance, "_start")?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(error) if error.i32_exit_status() == Some(0) => {}
            Err(error) => return Err(engine_error("start", error)),
        }
        let pl_global: TypedFunc<(), i32> = func(&store, &instance, "pl_global")?;
        let pl = pl_global
            .call(&mut store, ())
            .map_err(|e| engine_error("start", e))?;
        let memory = match instance.get_export(&store, "memory") {
            Some(Extern::Memory(memory)) => memory,
            _ => return Err(engine_error("start", "no memory")),
        };
        let mut machine = Machine {
            realloc: func(&store, &instance, "canonical_abi_realloc")?,
            free: func(&store, &instance, "canonical_abi_free")?,
            query: func(&store, &instance, "pl_query")?,
            store,
            memory,
            pl,
        };
        machine.take_output();
        Ok(machine)
    }

    /// Runs `goal` once (its first solution) and returns what it wrote. The goal's own failure
    /// or error is the driver's business (it catches and reports them on standard output); an
    /// error here is the engine's: out of memory, a trap, a goal Trealla cannot read.
    pub fn run(&mut self, goal: &str) -> Result<Output, String> {
        let bytes = goal.as_bytes();
        let size = bytes.len() as i32 + 1;
        let text = self
            .realloc
            .call(&mut self.store, (0, 0, 1, size))
            .map_err(|e| engine_error("allocate", e))?;
        let subq = self
            .realloc
            .call(&mut self.store, (0, 0, 4, 4))
            .map_err(|e| engine_error("allocate", e))?;
        if text == 0 || subq == 0 {
            return Err(engine_error("allocate", "out of memory"));
        }
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        self.memory
            .write(&mut self.store, text as u32 as usize, &with_nul)
            .map_err(|e| engine_error("write the goal", e))?;
        self.memory
            .write(&mut self.store, subq as u32 as usize, &[0; 4])
            .map_err(|e| engine_error("write the goal", e))?;
        let outcome = self.query.call(&mut self.store, (self.pl, text, subq, 0));
        let _ = self.free.call(&mut self.store, (text, size, 1));
        let _ = self.free.call(&mut self.store, (subq, 4, 4));
        outcome.map_err(|e| engine_error("run the query", e))?;
        Ok(self.take_output())
    }

    fn take_output(&mut self) -> Output {
        let host = self.store.data_mut();
        let stdout = String::from_utf8_lossy(&std::mem::take(&mut host.stdout)).into_owned();
        let stderr = String::from_utf8_lossy(&std::mem::take(&mut host.stderr)).into_owned();
        host.dropped = 0;
        Output { stdout, stderr }
    }
}

fn func<P: wasmi::WasmParams, R: wasmi::WasmResults>(
    store: &Store<Host>,
    instance: &Instance,
    name: &str,
) -> Result<TypedFunc<P, R>, String> {
    instance
        .get_typed_func::<P, R>(store, name)
        .map_err(|e| engine_error(&format!("find `{name}`"), e))
}
