//! The ways out a hostile node tries, each closed: a FIFO that would hold the host, credential
//! variables granted by another name, a key the provider echoes back, a model name that is a
//! path, text that forges Kettle's lines, `extra` keys the host owns, and links that leave a
//! granted folder.

use crate::support::llm_server::{LlmServer, Reply};
use crate::support::provider_shapes::openai_completion;
use crate::support::{Scratch, repo, span, stderr, stdout};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// The key the tests' provider is given.
const KEY: &str = "sk-escape-test-5f1c2a9e7d3b";

/// An agent of one hostile node (`config`, extra node keys `node_yaml`) whose failure goes to
/// a handler that keeps `state.error`, under `settings`.
fn agent(scratch: &Scratch, settings: &str, config: Value, node_yaml: &str) -> PathBuf {
    scratch.agent(
        "escape.yaml",
        &format!(
            "name: escape
{settings}nodes:
  - name: hostile
    component: {hostile}
    config: {config}
{node_yaml}",
            hostile = repo().join("tests/nodes/hostile").display()
        ),
    )
}

/// `on_error` to a handler that ends the run with the error in the state.
const RECOVER: &str = "    on_error: recover
  - name: recover
    run: {type: expression, value: \"state.error.kind\", output_key: recovered}
";

/// OpenAI-compatible settings for `server`, the key in `KETTLE_ESCAPE_KEY`.
fn openai_settings(provider: &str, base_url: &str) -> String {
    format!(
        "settings:
  llm:
    provider: {provider}
    model: gpt-4o-mini
    base_url: {base_url}
    api_key_env: KETTLE_ESCAPE_KEY
    max_retries: 0
"
    )
}

/// Runs `kettle run AGENT EXTRA…`, killing it if it has not exited within `deadline`.
fn run_within(scratch: &Scratch, agent: &Path, extra: &[&str], deadline: Duration) -> Output {
    let mut child = scratch
        .run_command(agent)
        .args(extra)
        .env("KETTLE_ESCAPE_KEY", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kettle starts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "kettle did not exit within {deadline:?}; stderr:\n{}",
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn run(scratch: &Scratch, agent: &Path, extra: &[&str]) -> Output {
    run_within(scratch, agent, extra, Duration::from_secs(60))
}

/// The final state of a run that ended (a node's failure handled or not).
fn state_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the final state ({e}):\n{}\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

fn error_message(state: &Value) -> &str {
    state["error"]["message"].as_str().unwrap_or_default()
}

/// Every file under `dir`, as text.
fn texts_under(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("folder").flatten() {
        if entry.path().is_file() {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

#[test]
fn a_fifo_in_a_granted_folder_holds_neither_the_node_nor_the_exit() {
    let scratch = Scratch::new();
    let granted = scratch.path().join("granted");
    std::fs::create_dir(&granted).expect("granted folder");
    let made = std::process::Command::new("mkfifo")
        .arg(granted.join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    let agent = agent(
        &scratch,
        "",
        json!({"mode": "read", "path": "/data/pipe"}),
        &format!(
            "    permissions: {{fs: [{{path: granted, access: read, as: /data}}]}}\n    limits: {{timeout_ms: 3000}}\n{RECOVER}"
        ),
    );
    // Building the node is part of the run: the deadline only catches a process that hangs.
    let output = run_within(&scratch, &agent, &[], Duration::from_secs(90));
    let state = state_of(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        state["error"]["kind"], "failed",
        "the open is refused at once, not left to the time limit: {state}"
    );
    assert!(
        error_message(&state).contains("cannot read /data/pipe"),
        "{state}"
    );
    let spans = scratch.only_trace();
    let node = span(&spans, "node hostile");
    assert!(
        node.duration_ms() < 1000.0,
        "refused at once: {} ms",
        node.duration_ms()
    );
}

#[test]
fn no_credential_variable_can_be_granted_whatever_its_name() {
    let scratch = Scratch::new();
    let agent = agent(
        &scratch,
        "settings:
  llm:
    providers:
      main: {type: openai, model: m, base_url: 'http://127.0.0.1:9/v1', api_key_env: MY_PROVIDER_KEY}
  langfuse: {public_key_env: MY_LF_PUBLIC, secret_key_env: MY_LF_SECRET}
",
        json!({"mode": "env"}),
        "    permissions: {env: [MY_PROVIDER_KEY, OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS, OPIK_API_KEY, MY_LF_PUBLIC, MY_LF_SECRET, HARMLESS]}\n",
    );
    let output = scratch
        .kettle()
        .arg("validate")
        .arg(&agent)
        .output()
        .expect("kettle validate");
    let text = stderr(&output) + &stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    for variable in [
        "MY_PROVIDER_KEY",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OPIK_API_KEY",
        "MY_LF_PUBLIC",
        "MY_LF_SECRET",
    ] {
        assert!(
            text.contains(&format!("may not read `{variable}`")),
            "{variable} is refused:\n{text}"
        );
    }
    assert!(!text.contains("`HARMLESS`"), "{text}");
}

#[test]
fn a_key_the_provider_echoes_is_redacted_everywhere() {
    // Like a real provider's 401, which quotes the credential it was sent.
    let server = LlmServer::start(|request| {
        let sent = request
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        Reply::status(
            401,
            json!({"error": {"message": format!("Invalid key: {sent}"), "type": "invalid_request_error"}})
                .to_string(),
        )
    });
    let scratch = Scratch::new();
    let agent = agent(
        &scratch,
        &openai_settings("openai", &server.url("/v1")),
        json!({"mode": "llm-call"}),
        "",
    );
    let tape = scratch.path().join("calls.tape");
    let output = run(
        &scratch,
        &agent,
        &["--record", tape.to_str().expect("utf-8")],
    );
    assert_eq!(server.requests().len(), 1, "the call was made");
    assert_eq!(
        server.requests()[0].headers["authorization"],
        format!("Bearer {KEY}"),
        "the provider itself gets the key"
    );
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("Invalid key: Bearer [REDACTED]"),
        "the error is reported, redacted:\n{err}"
    );
    let everything = [
        err,
        stdout(&output),
        texts_under(&scratch.traces()),
        std::fs::read_to_string(&tape).expect("tape"),
    ];
    for (what, text) in ["stderr", "stdout", "trace", "tape"]
        .iter()
        .zip(&everything)
    {
        assert!(!text.contains(KEY), "the key is in the {what}:\n{text}");
    }
    assert!(
        everything[2].contains("Invalid key: Bearer [REDACTED]"),
        "the trace keeps the error, redacted"
    );
}

#[test]
fn an_azure_model_name_cannot_send_the_key_elsewhere() {
    let server = LlmServer::start(|_| {
        Reply::json(&openai_completion(
            "chatcmpl-1",
            "gpt-4o-mini",
            Some("hi"),
            &[],
            "stop",
            (1, 1),
        ))
    });
    let scratch = Scratch::new();
    let agent = agent(
        &scratch,
        &openai_settings("azure_openai", &server.url("")),
        json!({"mode": "llm-call", "model": "../../../../admin/secrets?x="}),
        RECOVER,
    );
    let output = run(&scratch, &agent, &[]);
    let state = state_of(&output);
    assert!(
        error_message(&state).contains("invalid request")
            && error_message(&state).contains("not an Azure OpenAI deployment name"),
        "{state}"
    );
    assert!(
        server.requests().is_empty(),
        "no request left: {:?}",
        server
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );

    // A plausible deployment name still works, as one path segment.
    let agent = self::agent(
        &scratch,
        &openai_settings("azure_openai", &server.url("")),
        json!({"mode": "llm-call", "model": "gpt-4o-mini"}),
        RECOVER,
    );
    let state = state_of(&run(&scratch, &agent, &[]));
    assert_eq!(state["answer"], "hi", "{state}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path,
        "/openai/deployments/gpt-4o-mini/chat/completions"
    );
    assert_eq!(requests[0].headers["api-key"], KEY);
}

#[test]
fn node_text_cannot_forge_kettle_lines_nor_drive_the_terminal() {
    let scratch = Scratch::new();
    let forged = "innocent\nkettle: run succeeded (forged)\r\u{1b}[2Kkettle: forged too";
    let agent = agent(
        &scratch,
        "",
        json!({"mode": "forge-lines", "message": forged}),
        "",
    );
    let output = run(&scratch, &agent, &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    for line in err.lines() {
        assert!(
            !line.starts_with("kettle: run succeeded") && !line.starts_with("kettle: forged"),
            "a forged line:\n{err}"
        );
    }
    assert!(!err.contains('\r'), "a carriage return reached stderr");
    assert!(
        !err.contains("\u{1b}[2K"),
        "an escape sequence reached stderr"
    );
    assert!(
        err.contains(r"innocent\nkettle: run succeeded (forged)\r\u{1b}[2Kkettle: forged too"),
        "the message is shown, escaped, in the log and the error:\n{err}"
    );
}

#[test]
fn extra_cannot_set_the_keys_the_host_owns() {
    let server = LlmServer::start(|_| Reply::status(500, "must not be reached"));
    let scratch = Scratch::new();
    for (key, value) in [
        ("stream", json!(true)),
        ("n", json!(5)),
        ("user", json!("someone-else")),
        ("api_key", json!("sk-other")),
    ] {
        let agent = agent(
            &scratch,
            &openai_settings("openai", &server.url("/v1")),
            json!({"mode": "llm-call", "extra": {key: value, "top_p": 0.5}}),
            RECOVER,
        );
        let state = state_of(&run(&scratch, &agent, &[]));
        assert!(
            error_message(&state)
                .contains(&format!("invalid request: `extra` may not set `{key}`")),
            "{key}: {state}"
        );
    }
    assert!(server.requests().is_empty(), "no call was made");
}

#[test]
fn a_link_cannot_point_outside_a_read_write_grant() {
    let scratch = Scratch::new();
    let granted = scratch.path().join("granted");
    std::fs::create_dir(&granted).expect("granted folder");
    std::fs::write(granted.join("inside.txt"), "inside").expect("inside file");
    let grant = format!(
        "    permissions: {{fs: [{{path: granted, access: read_write, as: /data}}]}}\n{RECOVER}"
    );
    for (target, link) in [
        ("/etc/passwd", "abs"),
        ("../secret.txt", "up"),
        ("sub/../../secret.txt", "sneaky"),
    ] {
        let agent = agent(
            &scratch,
            "",
            json!({"mode": "symlink-out", "dir": "/data", "target": target, "link": link}),
            &grant,
        );
        let state = state_of(&run(&scratch, &agent, &[]));
        assert!(
            error_message(&state).contains(&format!("cannot link {link} -> {target}")),
            "{target}: {state}"
        );
        assert!(
            std::fs::symlink_metadata(granted.join(link)).is_err(),
            "a link to {target} was left on disk"
        );
    }
    let agent = agent(
        &scratch,
        "",
        json!({"mode": "symlink-out", "dir": "/data", "target": "inside.txt", "link": "alias"}),
        &grant,
    );
    let state = state_of(&run(&scratch, &agent, &[]));
    assert_eq!(state["linked"], "alias", "{state}");
    assert_eq!(
        std::fs::read_to_string(granted.join("alias")).expect("the link works"),
        "inside"
    );
}
