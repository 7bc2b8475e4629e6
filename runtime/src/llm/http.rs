//! A provider reached over HTTP: its wire format, one pooled client (connections reused), a
//! concurrency limit, timeouts, and retries with backoff. Every attempt is reported to the
//! caller's observer, so that it shows on the call's span.

use super::anthropic::AnthropicWire;
use super::framing::{Body, Frames, Framing};
use super::ollama::OllamaWire;
use super::openai::OpenAiWire;
use super::retry::{RetryPolicy, retry_after, retryable_status};
use super::types::{ChatRequest, ChatResponse, LlmError, StreamItem};
use super::wire::{StreamState, WireCall, status_error};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The wire formats Kettle speaks.
#[derive(Debug, Clone)]
pub enum Wire {
    OpenAi(OpenAiWire),
    Anthropic(AnthropicWire),
    Ollama(OllamaWire),
}

impl Wire {
    fn build(
        &self,
        base: &str,
        key: Option<&str>,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<WireCall, LlmError> {
        match self {
            Wire::OpenAi(w) => w.build(base, key, request, model, stream),
            Wire::Anthropic(w) => w.build(base, key, request, model, stream),
            Wire::Ollama(w) => w.build(base, key, request, model, stream),
        }
    }

    fn parse(&self, text: &str, model: &str) -> Result<ChatResponse, LlmError> {
        match self {
            Wire::OpenAi(w) => w.parse(text, model),
            Wire::Anthropic(w) => w.parse(text, model),
            Wire::Ollama(w) => w.parse(text, model),
        }
    }

    fn on_event(&self, data: &str, state: &mut StreamState) -> Result<Option<String>, LlmError> {
        match self {
            Wire::OpenAi(w) => w.on_event(data, state),
            Wire::Anthropic(w) => w.on_event(data, state),
            Wire::Ollama(w) => w.on_event(data, state),
        }
    }

    fn framing(&self) -> Framing {
        match self {
            Wire::Ollama(_) => Framing::NdJson,
            _ => Framing::Sse,
        }
    }
}

/// What a provider type brings to its HTTP provider; each wire module makes its own from the
/// provider's settings.
#[derive(Debug)]
pub struct WireSetup {
    pub wire: Wire,
    /// `gen_ai.provider.name`.
    pub system: &'static str,
    pub base_url: String,
    /// The variable the key is read from when `api_key_env` is not set.
    pub standard_key_env: Option<&'static str>,
    /// A model name, for the error that says one is required.
    pub example_model: &'static str,
}

/// One attempt, as the observer sees it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    pub status: Option<u16>,
    /// `None` when the attempt succeeded.
    pub error: Option<LlmError>,
    /// The wait before the next attempt, when there is one.
    pub retry_in: Option<Duration>,
}

/// Told about every attempt as it ends.
pub type Observer<'a> = &'a (dyn Fn(&Attempt) + Send + Sync);

#[derive(Debug)]
pub struct HttpProvider {
    pub wire: Wire,
    pub base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    policy: RetryPolicy,
    timeout: Duration,
    limit: Arc<Semaphore>,
}

/// An attempt that failed, and whether another is worth making.
struct Failure {
    error: LlmError,
    status: Option<u16>,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl HttpProvider {
    pub fn new(
        wire: Wire,
        base_url: String,
        api_key: Option<String>,
        policy: RetryPolicy,
        timeout: Duration,
        max_concurrency: usize,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_max_idle_per_host(max_concurrency)
            .user_agent(concat!("kettle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        // Fails now, not at the first call, on a URL that cannot work.
        super::wire::endpoint(&base_url, "").map_err(|e| format!("base_url: {e}"))?;
        Ok(Self {
            wire,
            base_url,
            api_key,
            http,
            policy,
            timeout,
            limit: Arc::new(Semaphore::new(max_concurrency.max(1))),
        })
    }

    /// The same provider at another address (TEA's per-call `api_base`), sharing the
    /// connection pool and the concurrency limit.
    pub fn at(&self, base_url: &str) -> Self {
        Self {
            wire: self.wire.clone(),
            base_url: base_url.to_string(),
            api_key: self.api_key.clone(),
            http: self.http.clone(),
            policy: self.policy,
            timeout: self.timeout,
            limit: self.limit.clone(),
        }
    }

    /// Host and port of the server, for `server.address` / `server.port`.
    pub fn server(&self) -> Option<(String, u16)> {
        let url = reqwest::Url::parse(&self.base_url).ok()?;
        Some((url.host_str()?.to_string(), url.port_or_known_default()?))
    }

    /// The HTTP request `request` becomes, secrets marked.
    pub fn wire_call(
        &self,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<WireCall, LlmError> {
        self.wire.build(
            &self.base_url,
            self.api_key.as_deref(),
            request,
            model,
            stream,
        )
    }

    pub async fn complete(
        &self,
        call: &WireCall,
        model: &str,
        trace_headers: &[(String, String)],
        observer: Observer<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let text = self
            .with_retries(observer, || async move {
                let _permit = self.permit().await?;
                let response = self.send(call, trace_headers).await?;
                tokio::time::timeout(self.timeout, response.text())
                    .await
                    .map_err(|_| timeout_failure(self.timeout))?
                    .map_err(transport_failure)
            })
            .await?;
        self.wire.parse(&text, model)
    }

    /// Opens a stream: retried until its first chunk has arrived (an error status, an empty
    /// body, an `error` event or a break before it is one failed attempt); once text flows,
    /// a failure ends the stream (the text already handed out cannot be taken back). The time
    /// to the first chunk is measured from the start of the attempt that gave it, so that it
    /// includes the wait for the response's headers.
    pub async fn stream(
        &self,
        call: &WireCall,
        model: &str,
        trace_headers: &[(String, String)],
        observer: Observer<'_>,
    ) -> Result<HttpStream, LlmError> {
        self.with_retries(observer, || async move {
            let permit = self.permit().await?;
            let started = Instant::now();
            let response = self.send(call, trace_headers).await?;
            let mut stream = self.open(response, permit, model).await?;
            match stream.read().await {
                Ok(first) => {
                    stream.first_chunk_after = Some(started.elapsed());
                    stream.pending.extend(first);
                    Ok(stream)
                }
                Err(error) => Err(Failure {
                    retryable: stream.last_error_retryable,
                    error,
                    status: Some(200),
                    retry_after: None,
                }),
            }
        })
        .await
    }

    /// The stream of a 200 answer: its events, or, when the server answered a stream request
    /// with one JSON body (`content-type: application/json`), that answer whole.
    async fn open(
        &self,
        response: reqwest::Response,
        permit: OwnedSemaphorePermit,
        model: &str,
    ) -> Result<HttpStream, Failure> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let whole_json = self.wire.framing() == Framing::Sse
            && content_type.starts_with("application/json")
            && !content_type.contains("event-stream");
        let mut stream = HttpStream {
            frames: None,
            _permit: permit,
            wire: self.wire.clone(),
            state: Some(StreamState::default()),
            model: model.to_string(),
            pending: VecDeque::new(),
            first_chunk_after: None,
            last_error_retryable: false,
        };
        if !whole_json {
            stream.frames = Some(Frames::new(
                self.wire.framing(),
                body(response, self.timeout),
            ));
            return Ok(stream);
        }
        let text = tokio::time::timeout(self.timeout, response.text())
            .await
            .map_err(|_| timeout_failure(self.timeout))?
            .map_err(transport_failure)?;
        stream.whole(&text).map_err(|(error, retryable)| Failure {
            error,
            status: Some(200),
            retryable,
            retry_after: None,
        })?;
        Ok(stream)
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, Failure> {
        self.limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Failure {
                error: LlmError::Provider("the provider is shutting down".into()),
                status: None,
                retryable: false,
                retry_after: None,
            })
    }

    async fn send(
        &self,
        call: &WireCall,
        trace_headers: &[(String, String)],
    ) -> Result<reqwest::Response, Failure> {
        let mut http = self.http.post(call.url.clone()).json(&call.body);
        for (name, value, _) in &call.headers {
            http = http.header(name, value);
        }
        for (name, value) in trace_headers {
            http = http.header(name, value);
        }
        let response = tokio::time::timeout(self.timeout, http.send())
            .await
            .map_err(|_| timeout_failure(self.timeout))?
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let after = retry_after(response.headers());
        let body = tokio::time::timeout(self.timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(Failure {
            error: status_error(status, &body),
            status: Some(status),
            retryable: retryable_status(status),
            retry_after: after,
        })
    }

    async fn with_retries<T, F, Fut>(
        &self,
        observer: Observer<'_>,
        mut attempt: F,
    ) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut number = 1;
        loop {
            match attempt().await {
                Ok(value) => {
                    observer(&Attempt {
                        number,
                        status: Some(200),
                        error: None,
                        retry_in: None,
                    });
                    return Ok(value);
                }
                Err(failure) => {
                    let retry = failure.retryable && number <= self.policy.max_retries;
                    let delay = retry.then(|| self.policy.delay(number, failure.retry_after));
                    observer(&Attempt {
                        number,
                        status: failure.status,
                        error: Some(failure.error.clone()),
                        retry_in: delay,
                    });
                    let Some(delay) = delay else {
                        return Err(failure.error);
                    };
                    tokio::time::sleep(delay).await;
                    number += 1;
                }
            }
        }
    }
}

fn timeout_failure(timeout: Duration) -> Failure {
    Failure {
        error: LlmError::Timeout(format!(
            "no answer from the provider within {} ms (timeout_ms)",
            timeout.as_millis()
        )),
        status: None,
        retryable: true,
        retry_after: None,
    }
}

fn transport_failure(error: reqwest::Error) -> Failure {
    let error = if error.is_timeout() {
        LlmError::Timeout(format!("no answer from the provider in time: {error}"))
    } else {
        LlmError::Provider(format!("cannot reach the provider: {}", chain(&error)))
    };
    Failure {
        error,
        status: None,
        retryable: true,
        retry_after: None,
    }
}

/// An error and its causes on one line (reqwest's own message hides the cause).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The bytes of a streamed answer as they arrive; a stall longer than `timeout` between two
/// pieces ends the body with an error.
fn body(response: reqwest::Response, timeout: Duration) -> Body {
    let pieces = futures::stream::try_unfold(response, move |mut response| async move {
        let piece = tokio::time::timeout(timeout, response.chunk())
            .await
            .map_err(|_| {
                LlmError::Timeout(format!(
                    "the stream stalled for {} ms (timeout_ms)",
                    timeout.as_millis()
                ))
            })?
            .map_err(|e| LlmError::Provider(format!("the stream broke off: {}", chain(&e))))?;
        Ok(piece.map(|bytes| (bytes, response)))
    });
    Box::pin(pieces)
}

/// A streamed answer being read; holds its slot of the concurrency limit until it ends.
#[derive(Debug)]
pub struct HttpStream {
    /// `None` for an answer that came whole.
    frames: Option<Frames>,
    _permit: OwnedSemaphorePermit,
    wire: Wire,
    /// `None` once the end was handed out (or queued in `pending`).
    state: Option<StreamState>,
    model: String,
    /// Items read but not yet handed out: the first chunk, read while the attempt was still
    /// retryable, or a whole answer.
    pending: VecDeque<StreamItem>,
    /// From the start of the attempt to its first chunk.
    first_chunk_after: Option<Duration>,
    /// Whether the last error read may pass on another attempt.
    last_error_retryable: bool,
}

impl HttpStream {
    /// From the start of the attempt that gave this stream to its first chunk.
    pub fn time_to_first_chunk(&self) -> Option<Duration> {
        self.first_chunk_after
    }

    /// The next text delta, then the whole answer, then `None`.
    pub async fn next(&mut self) -> Result<Option<StreamItem>, LlmError> {
        if let Some(item) = self.pending.pop_front() {
            return Ok(Some(item));
        }
        self.read().await
    }

    /// A whole JSON answer to a stream request, as the items a stream would have given.
    /// Errs with whether another attempt may succeed.
    fn whole(&mut self, text: &str) -> Result<(), (LlmError, bool)> {
        if text.trim().is_empty() {
            return Err((
                LlmError::Provider(
                    "the provider answered the stream request with an empty body".into(),
                ),
                true,
            ));
        }
        if let Some(e) = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .as_ref()
            .and_then(super::wire::body_error)
        {
            return Err((e.error, e.retryable));
        }
        let response = self.wire.parse(text, &self.model).map_err(|e| {
            let e = LlmError::Provider(format!(
                "the stream request was answered with one JSON body (not a stream), and {}",
                e.message()
                    .strip_prefix("the provider's answer is")
                    .map_or_else(|| e.message().to_string(), |rest| format!("it is{rest}"))
            ));
            (e, false)
        })?;
        if !response.content.is_empty() {
            self.pending
                .push_back(StreamItem::Delta(response.content.clone()));
        }
        self.pending.push_back(StreamItem::End(response));
        self.state = None;
        Ok(())
    }

    /// Reads frames until the next item.
    async fn read(&mut self) -> Result<Option<StreamItem>, LlmError> {
        self.last_error_retryable = false;
        loop {
            let Some(state) = self.state.as_mut() else {
                return Ok(None);
            };
            if state.done {
                let state = self.state.take().unwrap_or_default();
                return Ok(Some(StreamItem::End(state.into_response(&self.model))));
            }
            let Some(frames) = self.frames.as_mut() else {
                return Ok(None);
            };
            let frame = match frames.next().await {
                Ok(frame) => frame,
                Err(e) => {
                    // The body broke off or stalled: the server's trouble.
                    self.last_error_retryable = true;
                    return Err(e);
                }
            };
            match frame {
                Some(frame) => {
                    state.error_retryable = false;
                    match self.wire.on_event(&frame.data, state) {
                        Ok(Some(text)) => return Ok(Some(StreamItem::Delta(text))),
                        Ok(None) => {}
                        Err(e) => {
                            self.last_error_retryable = state.error_retryable;
                            return Err(e);
                        }
                    }
                }
                // Some compatible servers end without `[DONE]` once they gave a finish reason.
                None if state.finish_reason.is_some() => state.done = true,
                None => {
                    self.last_error_retryable = true;
                    return Err(LlmError::Provider(
                        "the stream ended before the answer was complete".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::Flavor;
    use crate::llm::{ChatMessage, Role};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts connections and requests in flight; answers each request after a pause.
    async fn counting_server(
        in_flight: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        connections: Arc<AtomicUsize>,
    ) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (in_flight, peak) = (in_flight.clone(), peak.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        // One request: headers, then Content-Length bytes of body.
                        let head_end = loop {
                            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buffer.len() < head_end + length {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buffer.drain(..head_end + length);
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let body =
                            r#"{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}"#;
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_wait_for_the_concurrency_limit_and_reuse_connections() {
        let (in_flight, peak, connections) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let addr = counting_server(in_flight, peak.clone(), connections.clone()).await;
        let provider = HttpProvider::new(
            Wire::OpenAi(OpenAiWire {
                flavor: Flavor::OpenAi,
                max_completion_tokens: false,
            }),
            format!("http://{addr}/v1"),
            None,
            RetryPolicy {
                max_retries: 0,
                backoff: Duration::from_millis(1),
            },
            Duration::from_secs(10),
            2,
        )
        .expect("provider");
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            ..ChatRequest::default()
        };
        let call = provider.wire_call(&request, "m", false).expect("call");
        let observer = |_: &Attempt| {};
        let answers = futures::future::join_all(
            (0..8).map(|_| provider.complete(&call, "m", &[], &observer)),
        )
        .await;
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().is_ok_and(|r| r.content == "ok"))
        );
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "never more than max_concurrency"
        );
        // A connection goes back to the pool a moment after its answer is read, so a call
        // admitted at once may open another one: reuse is asserted on calls made one by one.
        let opened = connections.load(Ordering::SeqCst);
        assert!(opened < 8, "8 calls over {opened} connections");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let answer = provider.complete(&call, "m", &[], &observer).await;
            assert!(answer.is_ok_and(|r| r.content == "ok"));
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            opened,
            "calls made one by one reuse a pooled connection"
        );
    }
}
