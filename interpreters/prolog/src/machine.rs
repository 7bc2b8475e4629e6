//! One Trealla Prolog interpreter: Trealla's engine component (npm's `tpl.wasm`, compiled by
//! the host like any node, composed with this component by Kettle's build), reached through
//! the `kettle:trealla/engine` interface of `engine.wit`. It answers one thing: run a
//! goal, and give back what the goal wrote.

mod bindings {
    wit_bindgen::generate!({ world: "glue", path: "engine.wit" });
}

use bindings::kettle::trealla::engine;

/// At most this much of a goal's output is kept; the rest is dropped.
pub const MAX_CAPTURE: u32 = 4 << 20;

/// A live Trealla interpreter: the engine's global one, its output captured.
pub struct Machine {
    pl: u32,
    /// Four words in Trealla's memory where `pl_capture_read` writes where the output is.
    capture_at: u32,
}

/// What a goal wrote.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

fn engine_error(what: &str) -> String {
    format!("the Prolog engine could not {what}: out of memory")
}

impl Machine {
    /// Takes the engine's global interpreter (Trealla's module is pre-initialized: no
    /// `_start`, no arguments) and captures its output.
    pub fn start() -> Result<Self, String> {
        let pl = engine::pl_global();
        if pl == 0 {
            return Err("the Prolog engine has no interpreter".to_string());
        }
        let capture_at = engine::alloc(0, 0, 4, 16);
        if capture_at == 0 {
            return Err(engine_error("start"));
        }
        engine::pl_capture(pl);
        Ok(Machine { pl, capture_at })
    }

    /// Runs `goal` once (its first solution) and returns what it wrote. The goal's own failure
    /// or error is the driver's business (it catches and reports them on standard output); a
    /// trap inside the engine (out of memory, a limit) ends the node.
    pub fn run(&mut self, goal: &str) -> Result<Output, String> {
        // Trealla's toplevel prints a query's bindings on the engine's standard output (the
        // node's log); under `\+ \+` a goal keeps its effects and leaves nothing bound.
        let mut text = format!("\\+ \\+ ({goal})").into_bytes();
        text.push(0);
        let size = text.len() as u32;
        let goal_at = engine::put(&text);
        let subquery_at = engine::put(&[0; 4]);
        if goal_at == 0 || subquery_at == 0 {
            return Err(engine_error("allocate the goal"));
        }
        engine::pl_query(self.pl, goal_at, subquery_at, 0);
        // A goal that succeeded with choice points left keeps its subquery (and its memory)
        // alive until it is done.
        let subquery = self.word(subquery_at);
        if subquery != 0 {
            engine::pl_done(subquery);
        }
        engine::free(goal_at, size, 1);
        engine::free(subquery_at, 4, 1);
        Ok(self.take_output())
    }

    fn word(&self, at: u32) -> u32 {
        let bytes = engine::get(at, 4);
        u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]))
    }

    fn take_output(&mut self) -> Output {
        let at = self.capture_at;
        engine::pl_capture_read(self.pl, at, at + 4, at + 8, at + 12);
        let text = |ptr: u32, len: u32| {
            if ptr == 0 {
                return String::new();
            }
            String::from_utf8_lossy(&engine::get(ptr, len.min(MAX_CAPTURE))).into_owned()
        };
        let stdout = text(self.word(at), self.word(at + 4));
        let stderr = text(self.word(at + 8), self.word(at + 12));
        engine::pl_capture_free(self.pl);
        engine::pl_capture(self.pl);
        Output { stdout, stderr }
    }
}
