//! A real HTTP/1.1 server on 127.0.0.1 with one fixed answer, counting the requests it gets:
//! the destination of the sandbox's outbound-HTTP tests.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this body.
    Body(String),
    /// 302 to this location.
    Redirect(String),
}

pub struct TinyServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl TinyServer {
    pub fn start(answer: Answer) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (answer, counter) = (answer.clone(), counter.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |_request: Request<Incoming>| {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let response = match &answer {
                                Answer::Body(body) => {
                                    Response::new(Full::new(Bytes::from(body.clone())))
                                }
                                Answer::Redirect(to) => Response::builder()
                                    .status(302)
                                    .header("location", to)
                                    .body(Full::new(Bytes::new()))
                                    .expect("response"),
                            };
                            async move { Ok::<_, hyper::Error>(response) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
