//! Trealla Prolog's engine as a component, and the Prolog interpreter composed with it.
//!
//! npm's `tpl.wasm` is a WASI preview-1 module with its own exports (`pl_query`, ...) and two
//! imports for a JavaScript host (`trealla.host-call`, `trealla.host-resume`). Here its core
//! module is rewritten to export the `kettle:trealla/engine` interface
//! (`interpreters/prolog/engine.wit`): its entry points under their WIT names, two small
//! functions to move bytes in and out of its memory, and `cabi_realloc`; the JavaScript hooks
//! become functions that trap. The preview-1 reactor adapter then makes it a component, and
//! the interpreter's glue (a Rust `kettle:node` component importing that interface) is
//! composed with it into ONE component, which wasmtime compiles like any node.

use super::{BuildError, BuildOutcome};
use std::collections::HashMap;
use std::path::Path;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, GlobalSection, GlobalType,
    Instruction, MemArg, Module, TypeSection, ValType,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// The interface the engine exports and the glue imports.
pub const ENGINE_WIT: &str = include_str!("../../interpreters/prolog/engine.wit");

/// The WIT functions the engine exports, and Trealla's export behind each (`None`: a function
/// added here).
const ENTRY_POINTS: &[(&str, Option<&str>)] = &[
    ("pl-global", Some("pl_global")),
    ("pl-query", Some("pl_query")),
    ("pl-done", Some("pl_done")),
    ("pl-capture", Some("pl_capture")),
    ("pl-capture-read", Some("pl_capture_read")),
    ("pl-capture-free", Some("pl_capture_free")),
    ("alloc", Some("canonical_abi_realloc")),
    ("free", Some("canonical_abi_free")),
    ("put", None),
    ("get", None),
];

/// Trealla's imports that no host here provides.
const HOST_HOOKS: &str = "trealla";

/// Why the engine could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Trealla's module is not what Kettle expects: {0}")]
    Module(String),
    #[error("cannot make Trealla's module a component: {0:#}")]
    Component(anyhow::Error),
    #[error("cannot compose the Prolog interpreter with Trealla's engine: {0:#}")]
    Compose(anyhow::Error),
}

fn module_error(error: impl std::fmt::Display) -> EngineError {
    EngineError::Module(error.to_string())
}

/// What the rewrite needs to know of Trealla's module, read before it is re-encoded.
struct Layout {
    /// Function imports, in order: (module, name, type index).
    func_imports: Vec<(String, String, u32)>,
    /// Type index of each defined function.
    defined: Vec<u32>,
    /// Function types: (params, results); `None` for a type that is not a function.
    types: Vec<Option<(Vec<ValType>, Vec<ValType>)>>,
    globals: u32,
    exports: HashMap<String, u32>,
}

impl Layout {
    fn read(wasm: &[u8]) -> Result<Self, EngineError> {
        let mut layout = Layout {
            func_imports: Vec::new(),
            defined: Vec::new(),
            types: Vec::new(),
            globals: 0,
            exports: HashMap::new(),
        };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(module_error)? {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        let ty = ty.map_err(module_error)?;
                        let valtypes = |types: &[wasmparser::ValType]| -> Option<Vec<ValType>> {
                            types
                                .iter()
                                .map(|t| match t {
                                    wasmparser::ValType::I32 => Some(ValType::I32),
                                    wasmparser::ValType::I64 => Some(ValType::I64),
                                    wasmparser::ValType::F32 => Some(ValType::F32),
                                    wasmparser::ValType::F64 => Some(ValType::F64),
                                    _ => None,
                                })
                                .collect()
                        };
                        layout
                            .types
                            .push(valtypes(ty.params()).zip(valtypes(ty.results())));
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(module_error)?;
                        match import.ty {
                            TypeRef::Func(ty) => layout.func_imports.push((
                                import.module.to_string(),
                                import.name.to_string(),
                                ty,
                            )),
                            TypeRef::Global(_) => layout.globals += 1,
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        layout.defined.push(ty.map_err(module_error)?);
                    }
                }
                Payload::GlobalSection(reader) => layout.globals += reader.count(),
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(module_error)?;
                        if export.kind == ExternalKind::Func {
                            layout.exports.insert(export.name.to_string(), export.index);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(layout)
    }
}

/// The re-encoder: drops the host hooks from the imports (shifting function indices), appends
/// the added functions, the one added global and the new exports.
struct Rewrite {
    /// Old function index to new.
    map: Vec<u32>,
    /// Type index of each appended function, and its body.
    added: Vec<(u32, Function)>,
    /// New types appended to the type section.
    new_types: Vec<(Vec<ValType>, Vec<ValType>)>,
    /// (export name, kind, index) in the new module.
    exports: Vec<(String, ExportKind, u32)>,
}

impl Reencode for Rewrite {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(self.map.get(func as usize).copied().unwrap_or(func))
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        wasm_encoder::reencode::utils::parse_type_section(self, types, section)?;
        for (params, results) in &self.new_types {
            types
                .ty()
                .function(params.iter().copied(), results.iter().copied());
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        for import in section.into_imports() {
            let import = import?;
            if import.module != HOST_HOOKS {
                imports.import(import.module, import.name, self.entity_type(import.ty)?);
            }
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        wasm_encoder::reencode::utils::parse_function_section(self, functions, section)?;
        for (ty, _) in &self.added {
            functions.function(*ty);
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        wasm_encoder::reencode::utils::parse_global_section(self, globals, section)?;
        // `get`'s return area, allocated on first use.
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &wasm_encoder::ConstExpr::i32_const(0),
        );
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        _section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        for (name, kind, index) in &self.exports {
            exports.export(name, *kind, *index);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        wasm_encoder::reencode::utils::parse_code_section(self, code, section)?;
        for (_, body) in &self.added {
            code.function(body);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        _module: &mut Module,
        _section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        // Names, producers: keyed by the old indices, and not needed.
        Ok(())
    }
}

/// Trealla's core module with the engine's exports (see the module comment).
pub fn engine_module(tpl: &[u8]) -> Result<Vec<u8>, EngineError> {
    let layout = Layout::read(tpl)?;
    let export = |name: &str| {
        layout
            .exports
            .get(name)
            .copied()
            .ok_or_else(|| EngineError::Module(format!("it does not export `{name}`")))
    };
    // Function indices: kept imports, defined functions, then the appended ones.
    let kept_imports = layout
        .func_imports
        .iter()
        .filter(|(module, _, _)| module != HOST_HOOKS)
        .count() as u32;
    let first_added = kept_imports + layout.defined.len() as u32;
    let mut map = Vec::new();
    let mut next_import = 0;
    let mut hooks = Vec::new();
    for (module, _, ty) in &layout.func_imports {
        if module == HOST_HOOKS {
            map.push(first_added + hooks.len() as u32);
            hooks.push(*ty);
        } else {
            map.push(next_import);
            next_import += 1;
        }
    }
    for i in 0..layout.defined.len() as u32 {
        map.push(kept_imports + i);
    }
    let mut added = Vec::new();
    for ty in hooks {
        let mut trap = Function::new([]);
        trap.instruction(&Instruction::Unreachable);
        trap.instruction(&Instruction::End);
        added.push((ty, trap));
    }
    // `put` and `get` are both (i32, i32) -> i32.
    let pair_to_i32 = (vec![ValType::I32, ValType::I32], vec![ValType::I32]);
    let mut new_types = Vec::new();
    let pair_ty = match layout
        .types
        .iter()
        .position(|t| t.as_ref() == Some(&pair_to_i32))
    {
        Some(at) => at as u32,
        None => {
            new_types.push(pair_to_i32);
            layout.types.len() as u32
        }
    };
    let realloc = map[export("canonical_abi_realloc")? as usize];
    let put_index = first_added + added.len() as u32;
    // put(ptr, len): the canonical ABI already copied the bytes into this memory, at `ptr`.
    let mut put = Function::new([]);
    put.instruction(&Instruction::LocalGet(0));
    put.instruction(&Instruction::End);
    added.push((pair_ty, put));
    // get(at, len): the list's (pointer, length), in a return area allocated once.
    let area = layout.globals;
    let word = |offset| MemArg {
        offset,
        align: 2,
        memory_index: 0,
    };
    let mut get = Function::new([]);
    for instruction in [
        Instruction::GlobalGet(area),
        Instruction::I32Eqz,
        Instruction::If(wasm_encoder::BlockType::Empty),
        Instruction::I32Const(0),
        Instruction::I32Const(0),
        Instruction::I32Const(4),
        Instruction::I32Const(8),
        Instruction::Call(realloc),
        Instruction::GlobalSet(area),
        Instruction::End,
        Instruction::GlobalGet(area),
        Instruction::LocalGet(0),
        Instruction::I32Store(word(0)),
        Instruction::GlobalGet(area),
        Instruction::LocalGet(1),
        Instruction::I32Store(word(4)),
        Instruction::GlobalGet(area),
        Instruction::End,
    ] {
        get.instruction(&instruction);
    }
    added.push((pair_ty, get));
    let mut exports = vec![
        ("memory".to_string(), ExportKind::Memory, 0),
        ("cabi_realloc".to_string(), ExportKind::Func, realloc),
    ];
    for (wit, trealla) in ENTRY_POINTS {
        let index = match trealla {
            Some(name) => map[export(name)? as usize],
            None if *wit == "put" => put_index,
            None => put_index + 1,
        };
        exports.push((
            format!("kettle:trealla/engine#{wit}"),
            ExportKind::Func,
            index,
        ));
    }
    let mut rewrite = Rewrite {
        map,
        added,
        new_types,
        exports,
    };
    let mut module = Module::new();
    rewrite
        .parse_core_module(&mut module, Parser::new(0), tpl)
        .map_err(module_error)?;
    let bytes = module.finish();
    if let Ok(path) = std::env::var("KETTLE_DEBUG_ENGINE_MODULE") {
        let _ = std::fs::write(path, &bytes);
    }
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&bytes)
        .map_err(|e| EngineError::Module(format!("the rewritten module is invalid: {e}")))?;
    Ok(bytes)
}

/// The engine component: the rewritten module, its WIT, and the preview-1 reactor adapter.
pub fn engine_component(tpl: &[u8]) -> Result<Vec<u8>, EngineError> {
    let mut module = engine_module(tpl)?;
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("engine.wit", ENGINE_WIT)
        .map_err(EngineError::Component)?;
    let world = resolve
        .select_world(&[package], Some("engine-world"))
        .map_err(EngineError::Component)?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(EngineError::Component)?;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| {
            encoder.adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(EngineError::Component)
}

/// The glue component at `glue` (importing `kettle:trealla/engine`) with the engine component
/// at `engine` plugged in: one component with the glue's exports.
pub fn compose(glue: &Path, engine: &Path) -> Result<Vec<u8>, EngineError> {
    let config = wasm_compose::config::Config {
        definitions: vec![engine.to_path_buf()],
        ..Default::default()
    };
    wasm_compose::composer::ComponentComposer::new(glue, &config)
        .compose()
        .map_err(EngineError::Compose)
}

/// Changes whenever the engine this module makes changes (with the same `tpl.wasm` and glue).
const ENGINE_REVISION: &str = "1";

/// The interpreter: the glue just built (or found up to date) composed with Trealla's engine,
/// kept beside the glue in the cache and made again when the glue, Trealla's module or this
/// module's revision changed.
pub fn with_engine(
    glue: BuildOutcome,
    tpl: &Path,
    tpl_sha256: &str,
) -> Result<BuildOutcome, BuildError> {
    let started = std::time::Instant::now();
    let fail = |message: String| BuildError::Trealla {
        dir: glue.wasm.clone(),
        message,
    };
    let composed = glue.wasm.with_extension(format!(
        "trealla-{}-{ENGINE_REVISION}.wasm",
        &tpl_sha256[..12]
    ));
    let fresh = !glue.built
        && match (std::fs::metadata(&composed), std::fs::metadata(&glue.wasm)) {
            (Ok(c), Ok(g)) => c.modified().ok() >= g.modified().ok(),
            _ => false,
        };
    if !fresh {
        let tpl_bytes =
            std::fs::read(tpl).map_err(|e| fail(format!("cannot read {}: {e}", tpl.display())))?;
        let engine = engine_component(&tpl_bytes).map_err(|e| fail(e.to_string()))?;
        // wasm-compose names the engine's instance after its file: a folder of its own.
        let scratch = composed.with_extension(format!("work-{}", std::process::id()));
        let engine_path = scratch.join("trealla-engine.wasm");
        std::fs::create_dir_all(&scratch)
            .and_then(|()| std::fs::write(&engine_path, &engine))
            .map_err(|e| fail(format!("cannot write {}: {e}", engine_path.display())))?;
        let bytes = compose(&glue.wasm, &engine_path);
        let _ = std::fs::remove_dir_all(&scratch);
        let bytes = bytes.map_err(|e| fail(e.to_string()))?;
        let out = composed.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&out, bytes)
            .and_then(|()| std::fs::rename(&out, &composed))
            .map_err(|e| fail(format!("cannot write {}: {e}", composed.display())))?;
    }
    Ok(BuildOutcome {
        wasm: composed,
        language: glue.language,
        built: glue.built || !fresh,
        took: glue.took + started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trealla's module, fetched from npm and checked the way Kettle does when it builds the
    /// interpreter.
    fn tpl() -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let tpl = crate::interpreters::TREALLA;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(crate::npm_wasm::ensure(
                &tpl,
                dir.path(),
                dir.path(),
                &|_| {},
            ))
            .expect("Trealla's module from npm");
        std::fs::read(dir.path().join(tpl.dest)).expect("tpl.wasm")
    }

    #[test]
    fn trealla_becomes_an_engine_component() {
        let tpl = tpl();
        let component = engine_component(&tpl).expect("engine component");
        assert!(wasmparser::Parser::is_component(&component));
        // With a glue component built by hand (KETTLE_PROLOG_GLUE), the composition too.
        let Ok(glue) = std::env::var("KETTLE_PROLOG_GLUE") else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = dir.path().join("trealla-engine.wasm");
        std::fs::write(&engine, &component).expect("write");
        let composed = compose(Path::new(&glue), &engine).expect("compose");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&composed)
            .expect("valid");
        if let Ok(out) = std::env::var("KETTLE_PROLOG_COMPOSED") {
            std::fs::write(out, &composed).expect("write");
        }
    }
}
