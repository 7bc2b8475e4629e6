//! `GET /metrics`: the server's counters and histograms in Prometheus' text format.

use kettle::engine::{RunError, RunReport};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Figures {
    runs: BTreeMap<(String, &'static str), u64>,
    failures: BTreeMap<(String, String), u64>,
    refused: BTreeMap<&'static str, u64>,
    run_seconds: BTreeMap<String, Histogram>,
    node_seconds: BTreeMap<String, Histogram>,
    /// By provider (its name in the agent's settings) and model.
    llm_seconds: BTreeMap<(String, String), Histogram>,
    llm_calls: BTreeMap<String, u64>,
    tokens: BTreeMap<(String, &'static str), u64>,
    spans_refused: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Metrics(Mutex<Figures>);

/// A label value with Prometheus' escapes.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Figures) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn refused(&self, reason: &'static str) {
        self.with(|m| *m.refused.entry(reason).or_default() += 1);
    }

    pub fn node_finished(&self, agent: &str, seconds: f64) {
        self.with(|m| {
            m.node_seconds
                .entry(agent.to_string())
                .or_default()
                .observe(seconds)
        });
    }

    pub fn llm_call_ended(&self, provider: &str, model: &str, seconds: f64) {
        self.with(|m| {
            m.llm_seconds
                .entry((provider.to_string(), model.to_string()))
                .or_default()
                .observe(seconds)
        });
    }

    pub fn run_finished(&self, report: &RunReport, status: &'static str) {
        let agent = report.agent.clone();
        self.with(|m| {
            *m.runs.entry((agent.clone(), status)).or_default() += 1;
            if let Err(e) = &report.outcome {
                let kind = match e {
                    RunError::Node { kind, .. } => kind.clone(),
                    RunError::StepLimit { .. } => "step_limit".to_string(),
                    RunError::Interrupted(_) => "cancelled".to_string(),
                    RunError::Paused { .. } => "interrupted".to_string(),
                    RunError::Checkpoint(_) => "checkpoint".to_string(),
                };
                *m.failures.entry((agent.clone(), kind)).or_default() += 1;
            }
            m.run_seconds
                .entry(agent.clone())
                .or_default()
                .observe(report.duration.as_secs_f64());
            *m.llm_calls.entry(agent.clone()).or_default() += report.llm.calls;
            *m.tokens.entry((agent.clone(), "input")).or_default() += report.llm.input_tokens;
            *m.tokens.entry((agent.clone(), "output")).or_default() += report.llm.output_tokens;
            *m.spans_refused.entry(agent).or_default() += report.spans_refused;
        });
    }

    /// The text `GET /metrics` answers; `in_flight`, `slots` and `pool` (instance-pool slots
    /// in use, and the pool's size) are read at the time of asking.
    pub fn render(&self, in_flight: usize, slots: usize, pool: (u32, u32)) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP kettle_runs_in_flight Runs executing now.\n# TYPE kettle_runs_in_flight gauge\nkettle_runs_in_flight {in_flight}"
        );
        let _ = writeln!(
            out,
            "# HELP kettle_run_slots Runs the server admits at once.\n# TYPE kettle_run_slots gauge\nkettle_run_slots {slots}"
        );
        let (pool_in_use, pool_size) = pool;
        let _ = writeln!(
            out,
            "# HELP kettle_pool_slots_in_use Instance-pool slots held by live node instances.\n# TYPE kettle_pool_slots_in_use gauge\nkettle_pool_slots_in_use {pool_in_use}"
        );
        let _ = writeln!(
            out,
            "# HELP kettle_pool_slots Instance-pool slots in all.\n# TYPE kettle_pool_slots gauge\nkettle_pool_slots {pool_size}"
        );
        self.with(|m| {
            let _ = writeln!(
                out,
                "# HELP kettle_runs_total Runs ended, by agent and status.\n# TYPE kettle_runs_total counter"
            );
            for ((agent, status), n) in &m.runs {
                let _ = writeln!(
                    out,
                    "kettle_runs_total{{agent=\"{}\",status=\"{status}\"}} {n}",
                    label(agent)
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_run_failures_total Runs that did not end ok, by agent and kind.\n# TYPE kettle_run_failures_total counter"
            );
            for ((agent, kind), n) in &m.failures {
                let _ = writeln!(
                    out,
                    "kettle_run_failures_total{{agent=\"{}\",kind=\"{}\"}} {n}",
                    label(agent),
                    label(kind)
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_requests_refused_total Run requests refused before running, by reason.\n# TYPE kettle_requests_refused_total counter"
            );
            for (reason, n) in &m.refused {
                let _ = writeln!(
                    out,
                    "kettle_requests_refused_total{{reason=\"{reason}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_run_duration_seconds Run latency.\n# TYPE kettle_run_duration_seconds histogram"
            );
            for (agent, h) in &m.run_seconds {
                h.write(
                    &mut out,
                    "kettle_run_duration_seconds",
                    &format!("agent=\"{}\"", label(agent)),
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_node_duration_seconds Node execution latency.\n# TYPE kettle_node_duration_seconds histogram"
            );
            for (agent, h) in &m.node_seconds {
                h.write(
                    &mut out,
                    "kettle_node_duration_seconds",
                    &format!("agent=\"{}\"", label(agent)),
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_llm_call_duration_seconds LLM call latency (a stream's until its last chunk), by provider and model.\n# TYPE kettle_llm_call_duration_seconds histogram"
            );
            for ((provider, model), h) in &m.llm_seconds {
                h.write(
                    &mut out,
                    "kettle_llm_call_duration_seconds",
                    &format!("provider=\"{}\",model=\"{}\"", label(provider), label(model)),
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_llm_calls_total LLM calls made.\n# TYPE kettle_llm_calls_total counter"
            );
            for (agent, n) in &m.llm_calls {
                let _ = writeln!(
                    out,
                    "kettle_llm_calls_total{{agent=\"{}\"}} {n}",
                    label(agent)
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_llm_tokens_total LLM tokens, by direction.\n# TYPE kettle_llm_tokens_total counter"
            );
            for ((agent, direction), n) in &m.tokens {
                let _ = writeln!(
                    out,
                    "kettle_llm_tokens_total{{agent=\"{}\",direction=\"{direction}\"}} {n}",
                    label(agent)
                );
            }
            let _ = writeln!(
                out,
                "# HELP kettle_spans_refused_total Spans nodes asked for beyond the run's span budget.\n# TYPE kettle_spans_refused_total counter"
            );
            for (agent, n) in &m.spans_refused {
                let _ = writeln!(
                    out,
                    "kettle_spans_refused_total{{agent=\"{}\"}} {n}",
                    label(agent)
                );
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_at_or_above_it() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(2.0);
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0025\"} 0\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 2\n"), "{out}");
    }
}
