//! `kettle serve`'s page in a real browser: headless Chromium, driven over WebDriver by
//! chromedriver (Debian's packages, installed by the test if missing), starts a run from the
//! page and reads its final state, events and span tree from the page.

use crate::support::{Scratch, debian};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A WebDriver session of headless Chromium.
struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

/// Ends the WebDriver session first, so that chromedriver quits its Chromium: killing the
/// driver alone left the browser running after the test.
impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.base).send();
    }
}

impl Browser {
    fn start() -> Self {
        debian::ensure("/usr/bin/chromedriver", &["chromium", "chromium-driver"]);
        let port = free_port();
        let driver = Killed(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{driver_url}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let session: Value = http
            .post(format!("{driver_url}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--disable-quic", "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                             format!("--user-data-dir={}", profile.path().display())]
                }
            }}}))
            .send()
            .expect("a session")
            .json()
            .expect("json");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"));
        Self {
            base: format!("{driver_url}/session/{id}"),
            http,
            _driver: driver,
            _profile: profile,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .expect("webdriver answers")
            .json()
            .expect("json");
        assert!(
            answer["value"].get("error").is_none(),
            "webdriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }));
    }

    /// The elements matching `css`, waiting up to 20 s for one.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.call(
                reqwest::Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            );
            if let Some(id) = found.get(0).and_then(|e| e[ELEMENT].as_str()) {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element `{css}` on the page");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            Value::Null,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits up to 30 s for the text of `css` to satisfy `done`.
    fn wait_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let element = self.find(css);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text(&element);
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never showed what was expected; it shows: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_page_starts_a_run_and_shows_its_state_events_and_span_tree() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "quick.yaml",
        "name: quick\ndescription: Doubles n.\nnodes:\n  - name: double\n    run: {type: expression, value: \"state.n * 2\", output_key: doubled}\n",
    );
    let mut server = Killed(
        scratch
            .kettle()
            .arg("serve")
            .arg(&agent)
            .args(["--listen", "127.0.0.1:0", "--trace-dir"])
            .arg(scratch.traces())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kettle serve starts"),
    );
    let mut lines = BufReader::new(server.0.stderr.take().expect("stderr"));
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            lines.read_line(&mut line).expect("stderr") > 0,
            "kettle serve exited"
        );
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    let browser = Browser::start();
    browser.open(&url);
    browser.wait_text("#title", |t| t == "quick");
    assert_eq!(
        browser.wait_text("#description", |t| !t.is_empty()),
        "Doubles n."
    );
    browser.find("svg rect[data-node=\"double\"]");

    let input = browser.find("#input");
    browser.call(
        reqwest::Method::POST,
        &format!("/element/{input}/clear"),
        json!({}),
    );
    browser.call(
        reqwest::Method::POST,
        &format!("/element/{input}/value"),
        json!({"text": "{\"n\": 21}"}),
    );
    let run = browser.find("#run");
    browser.call(
        reqwest::Method::POST,
        &format!("/element/{run}/click"),
        json!({}),
    );

    let state = browser.wait_text("#state", |t| !t.is_empty());
    let state: Value = serde_json::from_str(&state).expect("the page shows the state as JSON");
    assert_eq!(state, json!({"n": 21, "doubled": 42}));
    let events = browser.wait_text("#events", |t| t.contains("node_finish"));
    assert!(
        events.contains("node_start double") && events.contains("node_finish double"),
        "{events}"
    );
    let trace = browser.wait_text("#trace", |t| t.contains("invoke_agent"));
    assert!(
        trace.contains("invoke_agent quick") && trace.contains("node double"),
        "{trace}"
    );
    assert!(
        browser
            .wait_text("#status", |t| t.starts_with("ok"))
            .contains("run ")
    );
    let runs = browser.wait_text("#runs", |t| t.contains("quick ok"));
    assert!(runs.contains("quick ok"), "{runs}");
    let png = browser.call(reqwest::Method::GET, "/screenshot", Value::Null);
    assert!(
        png.as_str().is_some_and(|p| p.starts_with("iVBORw0KGgo")),
        "a PNG screenshot"
    );
}
