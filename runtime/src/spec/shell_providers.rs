//! TEA's shell providers (`settings.llm.shell_providers`, or `settings.shell_providers`): an
//! LLM call answered by a local program such as `claude -p`. The agent file only declares
//! them; the host runs one only when the operator grants it by name (`kettle run
//! --allow-shell-provider NAME`), so an agent file alone never makes the host run a program.

use serde::Deserialize;
use std::collections::BTreeMap;

/// `settings.llm.shell_providers.NAME:` as TEA documents it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellProviderSettings {
    /// The program, found on the host's `PATH` when it has no `/`.
    pub command: String,
    /// Its arguments; `{prompt}` is replaced by the prompt (then nothing is written to its
    /// stdin) and, with `stdin_mode: file`, `{input_file}` by the prompt file's path.
    #[serde(default)]
    pub args: Vec<String>,
    /// `pipe` (default: the prompt on stdin) or `file` (the prompt in a file).
    #[serde(default)]
    pub stdin_mode: Option<String>,
    /// Seconds the program may take (default 300); the node's `timeout_ms` still applies.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Variables set for the program; `${VAR}` is read from Kettle's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// TEA echoes the program's output as it comes; Kettle keeps it for the answer (accepted,
    /// no effect).
    #[serde(default)]
    pub verbose: Option<bool>,
}

/// The `provider:` value that selects a shell provider, as in TEA.
pub const SHELL: &str = "shell";

/// The shell providers TEA's documentation lists as built in, used when the agent declares
/// none of that name: `(name, command, args)`, the prompt on stdin.
pub const BUILTIN_SHELL_PROVIDERS: &[(&str, &str, &[&str])] = &[
    ("claude", "claude", &["-p"]),
    ("gemini", "gemini", &["prompt"]),
    ("qwen", "qwen", &[]),
];

/// The agent's shell providers: the built-in ones, then `settings.shell_providers`, then
/// `settings.llm.shell_providers` (TEA's canonical place, which wins on a name in both).
pub fn shell_providers(
    bare: &BTreeMap<String, ShellProviderSettings>,
    under_llm: Option<&BTreeMap<String, ShellProviderSettings>>,
) -> BTreeMap<String, ShellProviderSettings> {
    let mut all: BTreeMap<String, ShellProviderSettings> = BUILTIN_SHELL_PROVIDERS
        .iter()
        .map(|(name, command, args)| {
            (
                name.to_string(),
                ShellProviderSettings {
                    command: command.to_string(),
                    args: args.iter().map(|a| a.to_string()).collect(),
                    ..ShellProviderSettings::default()
                },
            )
        })
        .collect();
    all.extend(bare.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(under_llm) = under_llm {
        all.extend(under_llm.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}

/// What is wrong with one declared provider, if anything: `(key, message, hint)`.
pub fn check(name: &str, p: &ShellProviderSettings) -> Vec<(&'static str, String, String)> {
    let mut problems = Vec::new();
    if p.command.trim().is_empty() {
        problems.push((
            "command",
            format!("shell provider `{name}` has an empty `command`"),
            "name the program to run, such as `command: claude`".to_string(),
        ));
    }
    if let Some(mode) = &p.stdin_mode
        && mode != "pipe"
        && mode != "file"
    {
        problems.push((
            "stdin_mode",
            format!("shell provider `{name}` has the unknown `stdin_mode` `{mode}`"),
            "use `pipe` (the prompt on stdin) or `file` (the prompt in a file named by `{input_file}`)".to_string(),
        ));
    }
    if let Some(t) = p.timeout
        && !(t > 0.0 && t.is_finite())
    {
        problems.push((
            "timeout",
            format!("shell provider `{name}` has a `timeout` of {t}"),
            "give the seconds the program may take, more than 0".to_string(),
        ));
    }
    problems
}

/// The command line a provider runs, for messages: `claude -p {prompt}`.
pub fn command_line(p: &ShellProviderSettings) -> String {
    std::iter::once(p.command.as_str())
        .chain(p.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
