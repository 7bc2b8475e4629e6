//! The `kettle` command; everything it does lives in the library.

fn main() -> std::process::ExitCode {
    kettle::cli::main()
}
