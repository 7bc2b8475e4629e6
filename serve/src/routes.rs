//! The HTTP API: routes, the token check, and each handler's answer.

use crate::ServeConfig;
use crate::auth::authorized;
use crate::backend::{QueuedRun, RunBackend};
use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::registry::{Refusal, RunBook};
use crate::runs::{self, Progress, RunRequest};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

pub struct AppState {
    pub config: ServeConfig,
    pub catalog: Catalog,
    pub runs: Arc<RunBook>,
    pub metrics: Arc<Metrics>,
    /// Where runs go when not run here (`kettle serve --nats`).
    pub backend: Option<Arc<dyn RunBackend>>,
}

impl AppState {
    pub fn new(
        config: ServeConfig,
        catalog: Catalog,
        backend: Option<Arc<dyn RunBackend>>,
    ) -> Self {
        Self {
            backend,
            runs: RunBook::new(config.max_concurrent_runs),
            metrics: Arc::new(Metrics::default()),
            config,
            catalog,
        }
    }
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/agents", get(list_agents))
        .route("/v1/agents/{name}/runs", post(start_run))
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/{id}", get(get_run))
        .route("/v1/runs/{id}/trace", get(get_trace))
        .route("/v1/runs/{id}/resume", post(resume_run))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(crate::page::page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// An error answer: `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route; see GET /v1/agents, POST /v1/agents/{name}/runs, GET /v1/runs/{id}, /healthz, /readyz, /metrics",
    )
}

async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.config.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !authorized(given, token) {
            state.metrics.refused("unauthorized");
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "this server needs `Authorization: Bearer <token>` (its KETTLE_SERVE_TOKEN)",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

async fn readyz(State(state): State<Shared>) -> Response {
    if state.runs.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.metrics.render(
        state.runs.in_flight(),
        state.config.max_concurrent_runs,
        state.catalog.sandbox.pool_slots(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn list_agents(State(state): State<Shared>) -> Response {
    let agents: Vec<Value> = state
        .catalog
        .agents
        .values()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "graph_mermaid": a.mermaid,
                "graph": a.graph,
                "runs": format!("/v1/agents/{}/runs", a.name),
            })
        })
        .collect();
    axum::Json(json!({ "agents": agents })).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list_runs(State(state): State<Shared>, Query(query): Query<ListQuery>) -> Response {
    let mut runs = state.runs.list(query.status.as_deref());
    // Runs waiting on a person outlive the server that started them: read from the stores.
    if query.status.as_deref() == Some("interrupted") {
        for record in state.catalog.interrupted_runs() {
            if !runs.iter().any(|r| r.run_id == record.run_id) {
                runs.push(crate::registry::RunRecord {
                    run_id: record.run_id,
                    agent: record.agent,
                    status: "interrupted",
                    trace_id: Some(record.trace_id),
                    error: None,
                    state: None,
                    duration_ms: None,
                    trace_file: None,
                });
            }
        }
    }
    axum::Json(json!({ "runs": runs })).into_response()
}

async fn get_run(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    // A run handed over is answered from where its result is kept, which outlives this server.
    if let Some(backend) = &state.backend {
        match backend.result(&id).await {
            Ok(Some(result)) => {
                return axum::Json(crate::remote::answer_of(&result).body).into_response();
            }
            Ok(None) => {}
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    kettle::redact::text(&e.to_string()).into_owned(),
                );
            }
        }
    }
    match state.runs.get(&id) {
        Some(run) => axum::Json(run).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no recent run `{id}` (the server keeps the last 1000)"),
        ),
    }
}

/// The run's spans as a tree, from its trace file: what the page shows.
async fn get_trace(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(run) = state.runs.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no recent run `{id}`"));
    };
    let Some(file) = run.trace_file else {
        return error(
            StatusCode::NOT_FOUND,
            format!("run `{id}` has no trace file (still running, or the file exporter is off)"),
        );
    };
    match kettle::telemetry::read_trace_file(&file) {
        Ok(spans) => axum::Json(json!({ "spans": crate::page::span_tree(&spans) })).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the trace of run `{id}`: {e}"),
        ),
    }
}

/// The body of `POST /v1/agents/{name}/runs`. Nothing else is accepted: a request never
/// chooses providers, keys, grants or limits.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    input: Map<String, Value>,
    /// Shorter than the server's run timeout, never longer.
    timeout_ms: Option<u64>,
}

async fn start_run(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(served) = state.catalog.agents.get(&name).cloned() else {
        let names: Vec<&str> = state.catalog.agents.keys().map(String::as_str).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!("no agent `{name}`; this server runs: {}", names.join(", ")),
        );
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    run_and_answer(state, served, headers, body, None).await
}

/// `POST /v1/runs/{id}/resume`: continues a durable run (stopped at an interrupt, or cut off by
/// a crash) from its last checkpoint; `input` is merged into its state and its `answer` key
/// (or the whole input) is what the node's `interrupt` call returns.
async fn resume_run(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if state.backend.is_some() {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "this server hands its runs to workers (`--nats`), which do not stop at interrupts for a person; resume runs on a server without --nats",
        );
    }
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let Some((served, record)) = state.catalog.durable_run(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no durable run `{id}` in the stores of this server's agents; GET /v1/runs?status=interrupted lists the runs waiting"
            ),
        );
    };
    if record.status == kettle::checkpoint::RunStatus::Completed {
        return error(
            StatusCode::CONFLICT,
            format!("run `{id}` completed; there is nothing to resume"),
        );
    }
    let Some(store) = served.store.as_ref() else {
        return error(StatusCode::NOT_FOUND, format!("no durable run `{id}`"));
    };
    let mut checkpoint = match store.checkpoint(&id, None) {
        Ok(Some(checkpoint)) => checkpoint,
        Ok(None) => {
            return error(
                StatusCode::CONFLICT,
                format!("run `{id}` has no checkpoint yet"),
            );
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the checkpoint of run `{id}`: {e}"),
            );
        }
    };
    let answer = (!body.input.is_empty()).then(|| {
        checkpoint.position.merge_input(&body.input);
        body.input
            .get("answer")
            .cloned()
            .unwrap_or_else(|| Value::Object(body.input.clone()))
    });
    let body = RunBody {
        input: Map::new(),
        timeout_ms: body.timeout_ms,
    };
    run_and_answer(state, served, headers, body, Some((checkpoint, answer))).await
}

fn parse_body(body: &Bytes) -> Result<RunBody, String> {
    if body.is_empty() {
        return Ok(RunBody {
            input: Map::new(),
            timeout_ms: None,
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        format!(
                "the body must be a JSON object such as {{\"input\": {{\"topic\": \"tea\"}}, \"timeout_ms\": 30000}}: {e}"
        )
    })
}

/// Admits the run (or says why not), runs it, and answers with JSON or server-sent events.
async fn run_and_answer(
    state: Shared,
    served: Arc<crate::catalog::Served>,
    headers: HeaderMap,
    body: RunBody,
    resume: Option<(kettle::checkpoint::Checkpoint, Option<Value>)>,
) -> Response {
    let parent = match headers.get("traceparent").map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => {
            let tracestate = headers.get("tracestate").and_then(|v| v.to_str().ok());
            match kettle::telemetry::parse_traceparent(text, tracestate) {
                Ok(parent) => Some(parent),
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("traceparent: {e}")),
            }
        }
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "traceparent: not ASCII; expected 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>",
            );
        }
    };
    let server_timeout = state.config.run_timeout;
    let timeout = body
        .timeout_ms
        .map(Duration::from_millis)
        .map_or(server_timeout, |asked| asked.min(server_timeout));
    let ticket = match state.runs.admit() {
        Ok(ticket) => ticket,
        Err(Refusal::Busy) => {
            state.metrics.refused("busy");
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the server is running its maximum of {} runs; retry later",
                    state.config.max_concurrent_runs
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(Refusal::Draining) => {
            state.metrics.refused("draining");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down and accepts no new runs",
            );
        }
    };
    let wants_events = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = wants_events.then_some(tx);
    let (guard, answer) = match &state.backend {
        Some(backend) => {
            let run = QueuedRun {
                agent: served.name.clone(),
                input: body.input,
                // Checked above; the worker parses it again.
                traceparent: parent.is_some().then(|| {
                    headers
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                }),
            };
            crate::remote::start(
                backend.clone(),
                state.runs.clone(),
                ticket,
                run,
                timeout,
                progress,
            )
        }
        None => {
            let request = RunRequest {
                input: body.input,
                parent,
                timeout,
                resume,
            };
            runs::start(
                served,
                state.runs.clone(),
                state.metrics.clone(),
                ticket,
                request,
                progress,
            )
        }
    };
    if wants_events {
        drop(answer);
        // The stream owns the guard: a client that leaves drops the stream, which cancels the run.
        let stream = UnboundedReceiverStream::new(rx).map(move |progress| {
            let _keep = &guard;
            Ok::<_, Infallible>(match progress {
                Progress::Event(line) => {
                    // `node_start`, `node_finish`, `llm_chunk`, `llm_call`.
                    let kind = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|v| v["event"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "event".to_string());
                    Event::default().event(kind).data(line)
                }
                Progress::Done(answer) => Event::default()
                    .event("result")
                    .data(answer.body.to_string()),
            })
        });
        return Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    let answer = answer.await;
    drop(guard);
    let Ok(answer) = answer else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the run's task ended without an answer (an internal error); its trace was flushed",
        );
    };
    let status = match answer.status {
        "ok" => StatusCode::OK,
        "failed" => StatusCode::UNPROCESSABLE_ENTITY,
        "interrupted" => StatusCode::ACCEPTED,
        "refused" => StatusCode::BAD_REQUEST,
        "unavailable" => StatusCode::BAD_GATEWAY,
        _ if state.runs.is_draining() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::GATEWAY_TIMEOUT,
    };
    let mut response = (status, axum::Json(answer.body)).into_response();
    if let Some(value) = answer
        .traceparent
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        response.headers_mut().insert("traceparent", value);
    }
    response
}
