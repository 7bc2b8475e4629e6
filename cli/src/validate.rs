//! `kettle validate`: every problem of an agent file at once (structure, routes, expressions,
//! components), without building or running anything.

use super::args::ValidateArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK};

pub fn validate(args: ValidateArgs) -> u8 {
    match kettle::engine::load_checked(&args.agent) {
        Ok((loaded, _)) => {
            let nodes = loaded.spec.nodes.len();
            println!(
                "{}: valid ({nodes} node{})",
                args.agent.display(),
                if nodes == 1 { "" } else { "s" }
            );
            EXIT_OK
        }
        Err(errors) => {
            let count = errors.0.len();
            eprintln!("{errors}");
            eprintln!(
                "kettle: {} has {count} problem{}",
                args.agent.display(),
                if count == 1 { "" } else { "s" }
            );
            EXIT_BAD_INPUT
        }
    }
}
