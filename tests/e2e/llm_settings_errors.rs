//! Mistakes in `settings.llm` are bad input (exit 2) that say where and how to fix them, and
//! `llm.tools` without tools is caught when the node runs.

use crate::support::{Scratch, stderr};

fn bad(yaml: &str, expected: &[&str]) {
    let scratch = Scratch::new();
    let agent = scratch.agent("agent.yaml", yaml);
    let output = scratch.run(&agent, &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    for part in expected {
        assert!(text.contains(part), "expected `{part}` in:\n{text}");
    }
}

const NODES: &str = "nodes:\n  - name: a\n    uses: llm.call\n    with: {prompt: hi}\n";

#[test]
fn unknown_provider_types_and_defaults_are_located() {
    bad(
        &format!(
            "name: a\nsettings:\n  llm:\n    default: nope\n    providers:\n      fast:\n        type: openia\n        model: m\n      slow:\n        type: ollama\n        responses: [hi]\n{NODES}"
        ),
        &[
            "agent.yaml:4:5: `nope` is not a provider of settings.llm",
            "known providers: fast, slow",
            "agent.yaml:7:9: provider `fast` has the unknown type `openia`",
            "use openai (any OpenAI-compatible server, with base_url), azure_openai, ollama, anthropic or mock",
            "agent.yaml:11:9: `responses:` scripts the mock provider, but `slow` is `ollama`",
        ],
    );
}

#[test]
fn mock_responses_on_a_real_provider_are_refused() {
    bad(
        &format!(
            "name: a\nsettings:\n  llm:\n    provider: openai\n    model: m\n    responses: [hi]\n{NODES}"
        ),
        &[
            "agent.yaml:6:5: `responses:` scripts the mock provider, but settings.llm.provider is not `mock`",
        ],
    );
}

#[test]
fn several_providers_need_a_default() {
    bad(
        &format!(
            "name: a\nsettings:\n  llm:\n    providers:\n      one: {{type: mock}}\n      two: {{type: mock}}\n{NODES}"
        ),
        &[
            "agent.yaml:5:7: several LLM providers are named, but none is the default",
            "add `default: NAME`",
        ],
    );
}

#[test]
fn provider_settings_are_checked_before_the_run() {
    bad(
        &format!(
            "name: a\nsettings:\n  llm:\n    providers:\n      az:\n        type: azure_openai\n        base_url: http://127.0.0.1:9\n        model: gpt-4o\n        auth: password\n{NODES}"
        ),
        &["agent.yaml:9:9: settings.llm.providers.az.auth is `password`; use `api_key`"],
    );
    bad(
        &format!(
            "name: a\nsettings:\n  llm:\n    providers:\n      claude:\n        type: anthropic\n        api_key_env: KETTLE_NOT_SET_ANYWHERE\n        model: claude-x\n{NODES}"
        ),
        &[
            "agent.yaml:7:9: settings.llm.providers.claude.api_key_env names `KETTLE_NOT_SET_ANYWHERE`",
        ],
    );
    bad(
        &format!("name: a\nsettings:\n  llm:\n    provider: ollama\n{NODES}"),
        &[
            "agent.yaml:4:5: settings.llm.model is required with provider type `ollama` (for example `llama3.2`)",
        ],
    );
}

#[test]
fn a_call_to_an_unnamed_provider_fails_the_node_saying_which_exist() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        "name: a\nnodes:\n  - name: a\n    uses: llm.tools\n    with: {prompt: hi, provider: elsewhere, tools: [{name: t}]}\n",
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no LLM provider is named `elsewhere`; settings.llm has: mock"),
        "{}",
        stderr(&output)
    );
}
