//! The `interrupt` import: a node asks a person. In a run resumed with an answer, the first
//! call returns it; otherwise the call records the question and stops the node (a trap the
//! engine turns into a checkpointed stop, exit code 3), and the node runs again from its start
//! when the run is resumed.

use super::bindings::interrupt as wit;
use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::{HasData, Linker};

/// A question a node asked, waiting for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub node: String,
    /// JSON, as the node gave it.
    pub payload: String,
}

/// The run's answer (from `kettle resume --input`), given to the first node that asks, and
/// the question a node asked without one.
#[derive(Debug, Default)]
pub struct RunInterrupt {
    answer: Mutex<Option<String>>,
    asked: Mutex<Option<Asked>>,
}

impl RunInterrupt {
    /// The question asked in this run, if a node asked one without an answer (taken once).
    pub fn take_asked(&self) -> Option<Asked> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn ask(&self, node: &str, payload: String) -> Option<String> {
        if let Some(answer) = self
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Some(answer);
        }
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        if asked.is_none() {
            *asked = Some(Asked {
                node: node.to_string(),
                payload,
            });
        }
        None
    }
}

/// Per-node state: the run's, and who asks.
#[derive(Debug)]
pub struct NodeInterrupt {
    run: Arc<RunInterrupt>,
    node: String,
}

/// The `interrupt` capability; also names [`NodeInterrupt`] for `add_to_linker`.
pub struct InterruptCapability;

impl HasData for InterruptCapability {
    type Data<'a> = &'a mut NodeInterrupt;
}

impl Capability for InterruptCapability {
    type RunState = Arc<RunInterrupt>;
    type NodeState = NodeInterrupt;

    fn configure(run: &RunSetup<'_>) -> Arc<RunInterrupt> {
        Arc::new(RunInterrupt {
            answer: Mutex::new(run.answer.clone()),
            asked: Mutex::new(None),
        })
    }

    fn prepare(run: &Arc<RunInterrupt>, node: &NodeSetup<'_>) -> NodeInterrupt {
        NodeInterrupt {
            run: run.clone(),
            node: node.node.to_string(),
        }
    }

    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, InterruptCapability>(linker, |host: &mut T| {
            &mut host.capabilities().states.interrupt
        })
    }
}

impl wit::Host for &mut NodeInterrupt {
    fn interrupt(&mut self, payload: String) -> wasmtime::Result<String> {
        match self.run.ask(&self.node, payload) {
            Some(answer) => Ok(answer),
            None => Err(wasmtime::Error::msg(
                "interrupted: the node asks a person; the run is checkpointed and waits for `kettle resume`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_question_is_answered_once_then_asked() {
        let run = RunInterrupt {
            answer: Mutex::new(Some("\"yes\"".into())),
            asked: Mutex::new(None),
        };
        assert_eq!(run.ask("a", "{}".into()).as_deref(), Some("\"yes\""));
        assert!(run.take_asked().is_none());
        assert_eq!(run.ask("b", "{\"q\": 1}".into()), None);
        assert_eq!(run.ask("c", "{}".into()), None);
        assert_eq!(
            run.take_asked(),
            Some(Asked {
                node: "b".into(),
                payload: "{\"q\": 1}".into()
            })
        );
        assert!(run.take_asked().is_none());
    }
}
