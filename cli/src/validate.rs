//! `kettle validate`: every problem of an agent file at once (structure, routes, expressions,
//! components), without building or running anything; then the warnings (what TEA allows but
//! is likely a mistake), which `--strict` counts as problems.

use super::args::ValidateArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK};
use kettle::spec::SpecError;

pub fn validate(args: ValidateArgs) -> u8 {
    let (nodes, errors, warnings) = match kettle::engine::load_with_warnings(&args.agent) {
        Ok((loaded, _, warnings)) => (loaded.spec.nodes.len(), Vec::new(), warnings),
        Err((errors, warnings)) => (0, errors.0, warnings),
    };
    for error in &errors {
        eprintln!("{error}");
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let failed = !errors.is_empty() || (args.strict && !warnings.is_empty());
    if !failed {
        println!(
            "{}: valid ({nodes} node{}{})",
            args.agent.display(),
            plural(nodes),
            match warnings.len() {
                0 => String::new(),
                n => format!(", {n} warning{}", plural(n)),
            }
        );
        return EXIT_OK;
    }
    eprintln!(
        "kettle: {} has {}",
        args.agent.display(),
        summary(&errors, &warnings, args.strict)
    );
    EXIT_BAD_INPUT
}

fn summary(errors: &[SpecError], warnings: &[SpecError], strict: bool) -> String {
    let count = errors.len() + if strict { warnings.len() } else { 0 };
    let mut text = format!("{count} problem{}", plural(count));
    if !strict && !warnings.is_empty() {
        text.push_str(&format!(
            " and {} warning{}",
            warnings.len(),
            plural(warnings.len())
        ));
    } else if strict && !warnings.is_empty() {
        text.push_str(" (warnings count as problems with --strict)");
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
