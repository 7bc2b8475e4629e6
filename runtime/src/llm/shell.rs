//! TEA's shell providers: a call answered by a local program (`claude -p`, `codex exec -`)
//! that reads the prompt and prints the answer. The agent file declares the program; the host
//! runs it only when the operator has granted that provider by name for the run
//! ([`super::LlmClient::grant_shell_providers`]); otherwise the call is denied, saying what
//! would run and how to grant it.
//!
//! The program gets no shell (its arguments are passed as they are), a minimal environment
//! (the variables a CLI needs to find itself and its own login, plus the provider's `env:`;
//! never a variable holding a credential Kettle uses), is killed when the call is dropped
//! (the node's timeout, a cancelled run) or its own `timeout` passes, and its answer is
//! bounded in size.

use super::types::{ChatMessage, ChatRequest, ChatResponse, LlmError, Role, Usage};
use crate::spec::{ShellProviderSettings, shell_command_line};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The key of shell provider `name` among the client's providers.
pub fn provider_key(name: &str) -> String {
    format!("{}:{name}", crate::spec::SHELL)
}

/// TEA's default time a program may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Above this, a `{prompt}` argument is sent on stdin instead (TEA's limit).
const MAX_PROMPT_ARG_BYTES: usize = 100_000;
/// The most of the program's answer kept; a longer one fails the call.
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// The end of the program's stderr kept for the error message.
const MAX_STDERR_BYTES: usize = 4096;
/// Variables passed through from Kettle's environment: what a CLI needs to find itself, its
/// configuration and its own login. Nothing else is inherited.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TMPDIR",
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinMode {
    Pipe,
    File,
}

/// One declared (or built-in) shell provider.
#[derive(Debug)]
pub struct ShellProvider {
    name: String,
    command: String,
    args: Vec<String>,
    mode: StdinMode,
    timeout: Duration,
    env: BTreeMap<String, String>,
}

impl ShellProvider {
    /// From its settings; `${VAR}` in `command`, `args` and `env` values is read from Kettle's
    /// environment, except the variables in `secret_variables` (refused: a program the agent
    /// names is never handed a credential Kettle holds).
    pub fn from_settings(
        name: &str,
        p: &ShellProviderSettings,
        secret_variables: &[String],
    ) -> Result<Self, String> {
        let expand = |text: &str| expand_variables(text, secret_variables);
        Ok(Self {
            name: name.to_string(),
            command: expand(&p.command)?,
            args: p.args.iter().map(|a| expand(a)).collect::<Result<_, _>>()?,
            mode: match p.stdin_mode.as_deref() {
                Some("file") => StdinMode::File,
                _ => StdinMode::Pipe,
            },
            timeout: p
                .timeout
                .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs_f64(s.max(0.001))),
            env: p
                .env
                .iter()
                .map(|(k, v)| expand(v).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it runs, as written (`claude -p {prompt}`), for messages.
    pub fn command_line(&self) -> String {
        shell_command_line(&ShellProviderSettings {
            command: self.command.clone(),
            args: self.args.clone(),
            ..ShellProviderSettings::default()
        })
    }

    /// Runs the program on the request's messages; its trimmed stdout is the answer.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let prompt = format_messages(&request.messages);
        let run = self.run(&prompt);
        let content = match tokio::time::timeout(self.timeout, run).await {
            Ok(outcome) => outcome?,
            Err(_) => {
                return Err(LlmError::Timeout(format!(
                    "shell provider `{}`: `{}` did not finish within {} s (its `timeout`)",
                    self.name,
                    self.command,
                    self.timeout.as_secs_f64()
                )));
            }
        };
        Ok(ChatResponse {
            id: None,
            content: crate::redact::string(content.trim().to_string()),
            model: self.name.clone(),
            finish_reason: "stop".into(),
            usage: Usage::default(),
            tool_calls: Vec::new(),
        })
    }

    async fn run(&self, prompt: &str) -> Result<String, LlmError> {
        let fail = |message: String| {
            LlmError::Provider(format!("shell provider `{}`: {message}", self.name))
        };
        let in_args = self.args.iter().any(|a| a.contains("{prompt}"))
            && prompt.len() <= MAX_PROMPT_ARG_BYTES;
        let mut prompt_file = None;
        let args: Vec<String> = if in_args {
            self.args
                .iter()
                .map(|a| a.replace("{prompt}", prompt))
                .collect()
        } else if self.mode == StdinMode::File {
            let file = PromptFile::write(prompt)
                .map_err(|e| fail(format!("cannot write the prompt file: {e}")))?;
            let path = file.path.display().to_string();
            prompt_file = Some(file);
            self.args
                .iter()
                .map(|a| a.replace("{input_file}", &path))
                .collect()
        } else {
            // The prompt goes on stdin; a `{prompt}` argument (a prompt too long for one) is left out.
            self.args
                .iter()
                .filter(|a| !a.contains("{prompt}"))
                .cloned()
                .collect()
        };
        let on_stdin = !in_args && self.mode == StdinMode::Pipe;
        let mut command = tokio::process::Command::new(&self.command);
        command
            .args(&args)
            .env_clear()
            .envs(
                PASSED_THROUGH
                    .iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
            )
            .envs(&self.env)
            .stdin(if on_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!(
                    "the program `{}` was not found (looked on PATH)",
                    self.command
                ))
            } else {
                fail(format!("cannot start `{}`: {e}", self.command))
            }
        })?;
        let stdin = child.stdin.take();
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A program that exits without reading its input is not an error here.
                let _ = stdin.write_all(prompt.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (_, out, err, status) = tokio::join!(
            write,
            read_bounded(stdout, MAX_ANSWER_BYTES + 1),
            read_tail(stderr, MAX_STDERR_BYTES),
            child.wait(),
        );
        drop(prompt_file);
        let status = status.map_err(|e| fail(format!("waiting for `{}`: {e}", self.command)))?;
        let out = out.map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
            return Err(fail(format!(
                "`{}` failed ({code}): {}",
                self.command,
                String::from_utf8_lossy(&err).trim()
            ))
            .redacted());
        }
        if out.len() > MAX_ANSWER_BYTES {
            return Err(fail(format!(
                "the answer of `{}` is longer than {} MiB",
                self.command,
                MAX_ANSWER_BYTES >> 20
            )));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Messages as TEA writes them for a CLI: `System: ...`, `Assistant: ...`, user text as is,
/// separated by blank lines.
pub fn format_messages(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .map(|m| match m.role {
            Role::System => format!("System: {}", m.content),
            Role::Assistant => format!("Assistant: {}", m.content),
            Role::User | Role::Tool => m.content.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `text` with each `${VAR}` replaced by the variable's value (empty when unset, as in TEA).
fn expand_variables(text: &str, secret_variables: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        if secret_variables.iter().any(|s| s == name) {
            return Err(format!(
                "`${{{name}}}` names a variable holding a credential Kettle uses; a shell provider is never given one"
            ));
        }
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

async fn read_bounded(
    from: Option<impl AsyncRead + Unpin>,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(from) = from {
        from.take(limit as u64).read_to_end(&mut out).await?;
    }
    Ok(out)
}

/// The last `keep` bytes the program writes, reading all of it (so it never blocks on a full
/// pipe).
async fn read_tail(from: Option<impl AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let Some(mut from) = from else {
        return tail;
    };
    let mut buffer = [0u8; 4096];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
    tail
}

/// The prompt in a file only the current user can read, removed when dropped.
struct PromptFile {
    path: std::path::PathBuf,
}

impl PromptFile {
    fn write(prompt: &str) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "kettle-prompt-{}-{}.txt",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&path)?, prompt.as_bytes())?;
        Ok(Self { path })
    }
}

impl Drop for PromptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(command: &str, args: &[&str], mode: Option<&str>) -> ShellProvider {
        ShellProvider::from_settings(
            "local",
            &ShellProviderSettings {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                stdin_mode: mode.map(str::to_string),
                ..ShellProviderSettings::default()
            },
            &["OPENAI_API_KEY".to_string()],
        )
        .unwrap()
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![
                ChatMessage::new(Role::System, "be brief"),
                ChatMessage::new(Role::User, text),
            ],
            ..ChatRequest::default()
        }
    }

    #[tokio::test]
    async fn the_prompt_reaches_the_program_by_stdin_argument_or_file() {
        let stdin = provider("tr", &["a-z", "A-Z"], None);
        assert_eq!(
            stdin.complete(&request("green tea")).await.unwrap().content,
            "SYSTEM: BE BRIEF\n\nGREEN TEA"
        );
        let arg = provider("printf", &["%s|", "{prompt}"], None);
        assert_eq!(
            arg.complete(&request("x")).await.unwrap().content,
            "System: be brief\n\nx|"
        );
        let file = provider("cat", &["{input_file}"], Some("file"));
        assert_eq!(
            file.complete(&request("y")).await.unwrap().content,
            "System: be brief\n\ny"
        );
    }

    #[tokio::test]
    async fn failures_timeouts_and_missing_programs_are_errors() {
        let failing = provider("sh", &["-c", "echo broken >&2; exit 3"], None);
        let e = failing.complete(&request("x")).await.unwrap_err();
        assert!(
            matches!(&e, LlmError::Provider(m) if m.contains("exit code 3") && m.contains("broken")),
            "{e}"
        );
        let mut slow = provider("sleep", &["5"], None);
        slow.timeout = Duration::from_millis(100);
        assert!(matches!(
            slow.complete(&request("x")).await,
            Err(LlmError::Timeout(_))
        ));
        let missing = provider("kettle-no-such-program", &[], None);
        let e = missing.complete(&request("x")).await.unwrap_err();
        assert!(e.to_string().contains("was not found"), "{e}");
    }

    #[tokio::test]
    async fn the_program_gets_a_minimal_environment_and_never_a_credential() {
        // Cargo sets CARGO_MANIFEST_DIR for the test process; the program must not see it.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        let env = provider(
            "sh",
            &[
                "-c",
                "echo \"[$CARGO_MANIFEST_DIR][$X]\"; test -n \"$PATH\" && echo path",
            ],
            None,
        );
        let env = ShellProvider {
            env: BTreeMap::from([("X".to_string(), "given".to_string())]),
            ..env
        };
        assert_eq!(
            env.complete(&request("x")).await.unwrap().content,
            "[][given]\npath"
        );
        let refused = ShellProvider::from_settings(
            "leak",
            &ShellProviderSettings {
                command: "echo".into(),
                args: vec!["${OPENAI_API_KEY}".into()],
                ..ShellProviderSettings::default()
            },
            &["OPENAI_API_KEY".to_string()],
        );
        assert!(refused.unwrap_err().contains("credential"));
    }
}
