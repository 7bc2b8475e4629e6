//! The names Kettle uses on NATS: streams, subjects, the key-value bucket and its keys, and
//! the check that a run id or an agent name can be part of a subject.

/// The work-queue stream of run requests, `kettle.runs.<agent>`.
pub const RUNS_STREAM: &str = "KETTLE_RUNS";
/// Results (`kettle.results.<run>`) and dead letters (`kettle.dead.<agent>`).
pub const OUTCOMES_STREAM: &str = "KETTLE_OUTCOMES";
/// Runs, checkpoints and LLM tapes.
pub const STATE_BUCKET: &str = "KETTLE_STATE";
/// Components by sha256.
pub const COMPONENTS_BUCKET: &str = "KETTLE_COMPONENTS";

pub fn run_subject(agent: &str) -> String {
    format!("kettle.runs.{agent}")
}

pub fn result_subject(run_id: &str) -> String {
    format!("kettle.results.{run_id}")
}

pub fn dead_subject(agent: &str) -> String {
    format!("kettle.dead.{agent}")
}

pub fn events_subject(run_id: &str) -> String {
    format!("kettle.events.{run_id}")
}

/// The durable pull consumer the workers serving `agent` share.
pub fn consumer_name(agent: &str) -> String {
    format!("kettle-{agent}")
}

pub fn run_key(run_id: &str) -> String {
    format!("runs.{run_id}")
}

pub fn checkpoint_key(run_id: &str, seq: u64) -> String {
    format!("cps.{run_id}.{seq}")
}

/// The key of one LLM call; the execution's name (`r:0.1:ask#1/item3`) is hex-encoded, since
/// keys allow only letters, digits and `-/_=.`.
pub fn call_key(run_id: &str, exec: &str, ordinal: u32) -> String {
    format!("tape.{run_id}.{}.{ordinal}", hex::encode(exec))
}

/// Why `text` cannot name a run or an agent on NATS, if it cannot: it becomes one token of a
/// subject and of a key, so it may hold only letters, digits, `-` and `_` (1 to 128).
pub fn token_problem(what: &str, text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (!ok).then(|| {
        format!(
            "{what} `{}` cannot be used on NATS: use 1 to 128 letters, digits, `-` and `_`",
            kettle::redact::controls(text)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert!(token_problem("run id", "018f3c2a1b4-9e1d2c3f").is_none());
        assert!(token_problem("agent", "durable_fanout").is_none());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(129)] {
            assert!(token_problem("run id", bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn call_keys_are_valid_kv_keys() {
        let key = call_key("run-1", "r:0.1:ask#1/item3", 2);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
        );
    }
}
