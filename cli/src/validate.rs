//! `kettle validate`: every problem of an agent file at once (structure, routes, expressions,
//! components), without building or running anything.

use super::args::ValidateArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK};
use kettle::graph;
use kettle::spec::{self, SpecErrors};

pub fn validate(args: ValidateArgs) -> u8 {
    match check(&args.agent) {
        Ok(nodes) => {
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

/// The number of nodes of a valid agent, or all its problems in file order.
pub fn check(path: &std::path::Path) -> Result<usize, SpecErrors> {
    let loaded = spec::parse_file(path)?;
    let mut errors = spec::validate(&loaded);
    errors.extend(kettle::engine::check_files(&loaded));
    if let Err(more) = graph::compile(&loaded) {
        errors.extend(more.0);
    }
    if errors.is_empty() {
        Ok(loaded.spec.nodes.len())
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        Err(SpecErrors(errors))
    }
}
