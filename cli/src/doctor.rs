//! `kettle doctor`: which toolchains that build nodes are installed, where, and what is missing;
//! `--install` installs Kettle's own (componentize-py, componentize-js, the Rust target) now.

use super::args::DoctorArgs;
use super::{EXIT_OK, Threads, block_on, cache_dir};
use kettle_build::Toolchains;

pub fn doctor(args: DoctorArgs) -> u8 {
    block_on(Threads::One, doctor_async(args))
}

async fn doctor_async(args: DoctorArgs) -> u8 {
    let cache = cache_dir();
    let toolchains = Toolchains::for_cache(&cache);
    if args.install {
        let progress = |line: &str| eprintln!("kettle: {line}…");
        let results = [
            toolchains.ensure_rust_target(&progress).await,
            toolchains.ensure_python(&progress).await.map(|_| ()),
            toolchains.ensure_js(&progress).await,
        ];
        for error in results.iter().filter_map(|r| r.as_ref().err()) {
            eprintln!("kettle: {error}");
        }
    }
    println!("cache       {}", cache.display());
    println!("toolchains  {}", toolchains.dir().display());
    let mut missing = 0;
    for tool in toolchains.status().await {
        match &tool.installed {
            Some(version) => {
                let at = tool
                    .location
                    .as_ref()
                    .map(|p| format!("  ({})", p.display()))
                    .unwrap_or_default();
                println!("  ok       {:<16} {version}{at}", tool.name);
            }
            None => {
                missing += 1;
                println!("  missing  {:<16} {}", tool.name, tool.when_missing);
            }
        }
    }
    if missing > 0 && !args.install {
        println!("install Kettle's own toolchains now with `kettle doctor --install`");
    }
    EXIT_OK
}
