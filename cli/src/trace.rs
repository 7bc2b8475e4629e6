//! `kettle trace show`: a past run's trace as a tree.

use super::args::TraceShowArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK};
use kettle::telemetry::{read_trace_file, render_tree};
use std::path::PathBuf;

pub fn show(args: TraceShowArgs) -> u8 {
    let path = match resolve(&args) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    match read_trace_file(&path) {
        Ok(spans) if spans.is_empty() => {
            eprintln!("kettle: {} holds no spans", path.display());
            EXIT_BAD_INPUT
        }
        Ok(spans) => {
            println!("{}", path.display());
            print!("{}", render_tree(&spans));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("kettle: cannot read {}: {e}", path.display());
            EXIT_BAD_INPUT
        }
    }
}

/// A file path as given, a run id in `--dir`, or the newest file in `--dir`.
fn resolve(args: &TraceShowArgs) -> Result<PathBuf, String> {
    if let Some(run) = &args.run {
        let as_path = PathBuf::from(run);
        if as_path.is_file() {
            return Ok(as_path);
        }
        let in_dir = args.dir.join(format!("{run}.jsonl"));
        if in_dir.is_file() {
            return Ok(in_dir);
        }
        return Err(format!(
            "no trace `{run}`: neither a file nor a run in {} (pass --dir to look elsewhere)",
            args.dir.display()
        ));
    }
    let entries = std::fs::read_dir(&args.dir).map_err(|e| {
        format!(
            "no traces in {}: {e}; run an agent first (kettle run AGENT.yaml)",
            args.dir.display()
        )
    })?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| {
            format!(
                "no trace files in {}; run an agent first",
                args.dir.display()
            )
        })
}
