//! `kettle graph`: the agent's graph as Mermaid or Graphviz DOT on stdout.

use super::args::GraphArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK};
use kettle::graph;

pub fn graph(args: GraphArgs) -> u8 {
    match kettle::engine::load_checked(&args.agent) {
        Ok((loaded, compiled)) => {
            print!(
                "{}",
                graph::render(&compiled, &loaded.spec.name, args.format.into())
            );
            EXIT_OK
        }
        Err(errors) => {
            eprintln!("kettle: cannot read the agent:\n{errors}");
            EXIT_BAD_INPUT
        }
    }
}
