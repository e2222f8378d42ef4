//! A real `vidseek serve` process on a loopback port, and a tiny HTTP/1.1 client for it
//! (std only: the tests talk to the server exactly as any client would).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::models::tiny_model_dir;

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub token: Option<String>,
    /// The copy of a data folder the server runs on (`start_on_copy`), removed once it
    /// has stopped.
    _copy: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts `vidseek serve` with the bundled model and waits until it answers.
    pub fn start(data: &Path, libraries: &[&Path], extra: &[&str], token: Option<&str>) -> Server {
        let port = free_port();
        let model = tiny_model_dir();
        let bind = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = vec![
            "--data".into(),
            data.display().to_string(),
            "--device".into(),
            "cpu".into(),
            "--model".into(),
            model.display().to_string(),
        ];
        if let Some(db) = super::pg::database_for(data) {
            args.extend(["--database".into(), db]);
        }
        args.extend(["serve".into(), "--bind".into(), bind]);
        for l in libraries {
            args.push("--library".into());
            args.push(l.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(crate::common::bin());
        cmd.args(&args)
            .env_remove("VIDSEEK_TOKEN")
            .env_remove("VIDSEEK_OCR")
            .env_remove("VIDSEEK_OCR_MODEL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("VIDSEEK_TOKEN", t);
        }
        let child = cmd.spawn().unwrap();
        let server = Server {
            child,
            port,
            token: token.map(str::to_string),
            _copy: None,
        };
        let t0 = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Starts a server on a copy of the data folder `data` (a server may write: jobs, a
    /// checkpoint), for the tests that share one library indexed once.
    pub fn start_on_copy(data: &Path, libraries: &[&Path]) -> Server {
        let copy = tempfile::tempdir().unwrap();
        super::copy_library(data, &copy.path().join("data"));
        let mut s = Server::start(&copy.path().join("data"), libraries, &[], None);
        s._copy = Some(copy);
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A request with the server's token (when it has one).
    pub fn req(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Response {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        request(self.port, method, path, &headers, body)
    }

    /// The id of the video whose path ends with `name`, from `GET /api/videos`.
    pub fn video_id(&self, name: &str) -> i64 {
        let v = self.get("/api/videos").json();
        v["videos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no video {name} in {v}"))["id"]
            .as_i64()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path, None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        let b = body.to_string();
        self.req("POST", path, Some(("application/json", b.as_bytes())))
    }

    /// Polls until `f` holds (or panics after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut(&Server) -> bool) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until job `id` ends (succeeded, failed or canceled); the job as it ended.
    pub fn wait_job(&self, id: i64) -> Value {
        let mut last = Value::Null;
        self.wait_for(120, &format!("job {id}"), |s| {
            last = s.get(&format!("/api/jobs/{id}")).json();
            matches!(last["state"].as_str(), Some("succeeded" | "failed" | "canceled"))
        });
        last
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((ct, b)) = body {
        head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    if let Some((_, b)) = body {
        // The server may answer (413) before reading everything.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..p]).trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[p + 2 + n + 2..];
        }
        body = out;
    }
    Response { status, headers, body }
}

/// The first bytes of `GET path` on a raw connection (for a stream that stays open):
/// read until the event stream says it is connected or the server says 401.
pub fn first_bytes(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    for _ in 0..20 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
                if got.contains("connected") || got.contains("401") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

/// A multipart/form-data body with one file field.
pub fn multipart(field: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "vidseek-test-boundary-7d3f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
