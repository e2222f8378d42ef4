//! The MCP server (`vidseek mcp` on stdio, `/mcp` on `vidseek serve`) driven by a real
//! client: the official Python SDK (`mcp` from PyPI, tests/fixtures/mcp_client.py) over
//! both transports, on rendered footage whose red circle is at known times. Checked:
//! the tools and their schemas; "a red circle" found at its time with links; a moment's
//! pictures decoded by the ffmpeg CLI (size and colour) with its subtitle and tags;
//! list_videos and index_status equal to the CLI's; `index` refused on stdio unless
//! allowed and on HTTP to a `search` API key, queued for an admin; malformed calls answered with errors naming the field (the session
//! lives on); a body that is not JSON-RPC and a missing or wrong token answered with
//! clear 4xx statuses.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape};

use crate::common::cli::{data_args, videos};
use crate::common::footage::render;
use crate::common::models::tiny_model_dir;
use crate::common::server::{Server, request};

/// A red circle on blue for 0-3 s, then a green square, an empty yellow frame; a
/// second video without red; a subtitle cue over the circle.
struct Footage {
    _dir: tempfile::TempDir,
    data: PathBuf,
    lib: PathBuf,
    red: PathBuf,
}

const CUE: &str = "the lantern is lit";

fn footage() -> &'static Footage {
    static F: OnceLock<Footage> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        let red = lib.join("red.mp4");
        render(
            &red,
            vec![
                (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
                (Scene::new(Colour::Green, Shape::Square, Colour::White), 3.0),
                (Scene::empty(Colour::Yellow), 2.0),
            ],
        );
        std::fs::write(
            lib.join("red.srt"),
            format!("1\n00:00:00,500 --> 00:00:02,500\n{CUE}\n"),
        )
        .unwrap();
        render(
            &lib.join("other.mp4"),
            vec![
                (Scene::new(Colour::White, Shape::Star, Colour::Black), 3.0),
                (Scene::new(Colour::Yellow, Shape::Triangle, Colour::Purple), 3.0),
            ],
        );
        let data = dir.path().join("data");
        let (ok, report) = crate::common::cli::index_json(&data, &[&lib]);
        assert!(ok, "{report}");
        Footage {
            data,
            lib,
            red,
            _dir: dir,
        }
    })
}

/// Runs the Python client with `plan`; its report (images written under `out`).
fn client(plan: Value, out: &Path) -> Value {
    let plan_file = out.join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let script = crate::common::root().join("tests/fixtures/mcp_client.py");
    let o = std::process::Command::new(crate::common::python())
        .arg(&script)
        .arg(&plan_file)
        .arg(out)
        .output()
        .expect("the tests' Python runs");
    assert!(
        o.status.success(),
        "the MCP client failed (is the `mcp` package installed? `.ci/setup --test`):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn stdio_plan(data: &Path, extra: &[&str], calls: Value) -> Value {
    let mut args = data_args(data);
    args.extend(["--device", "cpu", "--model"].map(String::from));
    args.push(tiny_model_dir().display().to_string());
    args.push("mcp".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    json!({
        "transport": "stdio",
        "command": crate::common::bin().display().to_string(),
        "args": args,
        "env": { "VIDSEEK_LOG": "warn" },
        "calls": calls,
    })
}

fn red_id() -> i64 {
    let f = footage();
    videos(&f.data)
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with("red.mp4"))
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// The tools, their required fields and ranges, as the client listed them.
fn assert_tools(report: &Value) {
    let tools = report["tools"].as_array().unwrap();
    let schema = |name: &str| -> &Value {
        &tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name} in {tools:?}"))["inputSchema"]
    };
    assert_eq!(tools.len(), 5, "{tools:?}");
    let search = schema("search");
    assert_eq!(search["required"], json!(["query"]), "{search}");
    assert_eq!(search["properties"]["query"]["type"], "string", "{search}");
    assert_eq!(search["properties"]["k"]["maximum"], 100, "{search}");
    assert_eq!(search["properties"]["k"]["minimum"], 1, "{search}");
    let moment = schema("get_moment");
    assert_eq!(moment["required"], json!(["video_id", "start"]), "{moment}");
    assert_eq!(moment["properties"]["video_id"]["type"], "integer", "{moment}");
    assert_eq!(schema("index")["required"], json!(["path"]));
    let none = schema("list_videos");
    assert_eq!(
        (&none["type"], &none["required"]),
        (&json!("object"), &Value::Null),
        "{none}"
    );
}

/// The first moment of "a red circle": the red video inside 0-3 s, with its links.
fn assert_red_found(call: &Value, link_base: Option<&str>) -> Value {
    assert_eq!(call["is_error"], false, "{call}");
    let moments = call["structured"]["moments"].as_array().unwrap();
    let first = &moments[0];
    assert!(first["path"].as_str().unwrap().ends_with("red.mp4"), "{moments:?}");
    let (start, end) = (first["start"].as_f64().unwrap(), first["end"].as_f64().unwrap());
    assert!(
        start < 3.0 && end > start && end <= 3.6,
        "red circle at {start}-{end} s, not within 0-3 s"
    );
    let file = first["file"].as_str().unwrap();
    assert!(file.starts_with("file:///") && file.contains("red.mp4#t="), "{file}");
    match link_base {
        Some(base) => {
            let link = first["link"].as_str().unwrap();
            let want = format!("{base}/?q=a+red+circle&v={}&t={start:.2}&e={end:.2}", first["video_id"]);
            assert_eq!(link, want);
        }
        None => assert!(first["link"].is_null(), "{first}"),
    }
    // The text block carries the same answer for clients that read only text.
    let text: Value = serde_json::from_str(call["texts"][0].as_str().unwrap()).unwrap();
    assert_eq!(text, call["structured"]);
    first.clone()
}

/// RGB of the centre pixel of an image file, decoded by the ffmpeg CLI, and its size.
fn decoded(path: &str) -> ((u32, u32), [u8; 3]) {
    let probe = crate::clips::probe(Path::new(path));
    let s = &probe["streams"][0];
    let (w, h) = (
        s["width"].as_u64().unwrap() as u32,
        s["height"].as_u64().unwrap() as u32,
    );
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let i = (((h / 2) * w + w / 2) * 3) as usize;
    ((w, h), [out.stdout[i], out.stdout[i + 1], out.stdout[i + 2]])
}

/// get_moment of the red moment: JPEG pictures 120 px on the short side (16:9 like
/// the video) showing the red disc, the subtitle cue, the tags.
fn assert_red_moment(call: &Value, video_id: i64) {
    assert_eq!(call["is_error"], false, "{call}");
    let images = call["images"].as_array().unwrap();
    assert!(!images.is_empty() && images.len() <= 3, "{images:?}");
    for img in images {
        assert_eq!(img["mime_type"], "image/jpeg");
        let ((w, h), [r, g, b]) = decoded(img["path"].as_str().unwrap());
        assert_eq!(h, 120, "thumbnail {w}x{h}");
        assert!((w as f64 / h as f64 - 16.0 / 9.0).abs() < 0.05, "thumbnail {w}x{h}");
        assert!(
            r > 150 && g < 100 && b < 100,
            "centre pixel {r},{g},{b} is not the red disc"
        );
    }
    let s = &call["structured"];
    assert_eq!(s["video_id"], video_id);
    assert_eq!(s["pictures"].as_array().unwrap().len(), images.len());
    let cues: Vec<&str> = s["subtitles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(cues, [CUE], "{s}");
    assert!(s["tags"].is_array(), "{s}");
}

/// A protocol error (-32602, invalid params) whose message names `field`.
fn assert_names_field(call: &Value, field: &str) {
    let e = &call["error"];
    assert_eq!(e["code"], -32602, "{call}");
    let m = e["message"].as_str().unwrap();
    assert!(m.contains(field), "the error {m:?} does not name {field}");
}

/// A tool error (isError) whose text contains `part`.
fn assert_tool_error(call: &Value, part: &str) {
    assert_eq!(call["is_error"], true, "{call}");
    let t = call["texts"][0].as_str().unwrap();
    assert!(t.contains(part), "{t:?} does not say {part:?}");
}

/// list_videos and index_status against `vidseek videos --json`.
fn assert_matches_cli(list: &Value, status: &Value) {
    let cli = videos(&footage().data);
    assert_eq!(list["structured"]["videos"].as_array().unwrap(), &cli);
    let s = &status["structured"];
    let frames: i64 = cli.iter().map(|v| v["frame_count"].as_i64().unwrap()).sum();
    assert_eq!(s["videos"], cli.len());
    assert_eq!(s["indexed"], cli.iter().filter(|v| v["status"] == "indexed").count());
    assert_eq!(s["frames"], frames, "{s}");
}

#[test]
fn stdio_answers_a_real_client_with_moments_links_pictures_and_field_errors() {
    let f = footage();
    let id = red_id();
    let out = tempfile::tempdir().unwrap();
    let calls = json!([
        { "tool": "search", "args": { "query": "a red circle", "k": 5 } },
        { "tool": "get_moment", "args": { "video_id": id, "start": 0.0, "end": 3.0, "images": 3 } },
        { "tool": "list_videos" },
        { "tool": "index_status", "args": {} },
        { "tool": "index", "args": { "path": f.lib.display().to_string() } },
        { "tool": "search", "args": { "k": 3 } },
        { "tool": "search", "args": { "query": "a red circle", "k": "ten" } },
        { "tool": "search", "args": { "query": "a red circle", "k": 1000 } },
        { "tool": "get_moment", "args": { "video_id": id, "start": 1.0, "ned": 2.0 } },
        { "tool": "get_moment", "args": { "video_id": 99999, "start": 0.0 } },
        { "tool": "get_moment", "args": { "video_id": id, "start": 500.0 } },
        { "tool": "search", "args": { "query": "a red circle", "min_score": "2" } },
        { "tool": "search", "args": { "query": "" } },
    ]);
    let plan = stdio_plan(&f.data, &["--base-url", "http://videos.example:8080/"], calls);
    let r = client(plan, out.path());
    assert_eq!(r["server"], "vidseek");
    assert_tools(&r);
    let c = r["calls"].as_array().unwrap();
    assert_red_found(&c[0], Some("http://videos.example:8080"));
    assert_red_moment(&c[1], id);
    assert_matches_cli(&c[2], &c[3]);
    assert_eq!(c[3]["structured"]["index_allowed"], false);
    assert_tool_error(&c[4], "administrators");
    assert_names_field(&c[5], "query");
    assert_eq!(c[5]["error"]["data"]["field"], "query", "{}", c[5]);
    assert_names_field(&c[6], "argument k");
    assert_names_field(&c[7], "argument k");
    assert_names_field(&c[8], "ned");
    assert_tool_error(&c[9], "video 99999");
    assert_tool_error(&c[10], "start");
    assert_tool_error(&c[11], "2");
    assert_names_field(&c[12], "argument query");
    assert_eq!(r["alive"], 5, "the session ended after an error");
}

const TOKEN: &str = "mcp-test-token";

#[test]
fn http_serves_the_tools_behind_the_token_and_refuses_index_and_non_json_rpc() {
    let f = footage();
    let id = red_id();
    let copy = tempfile::tempdir().unwrap();
    let data = copy.path().join("data");
    crate::common::copy_library(&f.data, &data);
    // An agent's key that may search and read, not change the library.
    let key: Value = crate::common::cli::vs_json(&data, &["keys", "create", "agent", "--scope", "search", "--json"]);
    let key = key["key"].as_str().unwrap().to_string();
    let s = Server::start(&data, &[&f.lib], &[], Some(TOKEN));
    let out = tempfile::tempdir().unwrap();
    let calls = json!([
        { "tool": "search", "args": { "query": "a red circle", "k": 5 } },
        { "tool": "get_moment", "args": { "video_id": id, "start": 0.5, "end": 2.5, "images": 2 } },
        { "tool": "list_videos", "args": {} },
        { "tool": "index_status", "args": {} },
        { "tool": "index", "args": { "path": f.red.display().to_string() } },
        { "tool": "search", "args": { "query": 42 } },
    ]);
    let plan = json!({ "transport": "http", "url": s.url("/mcp"), "token": key, "calls": calls });
    let r = client(plan, out.path());
    assert_tools(&r);
    let c = r["calls"].as_array().unwrap();
    // Without --base-url, links start with the address the request came to.
    assert_red_found(&c[0], Some(&format!("http://127.0.0.1:{}", s.port)));
    assert_red_moment(&c[1], id);
    assert_matches_cli(&c[2], &c[3]);
    assert_eq!(c[3]["structured"]["index_allowed"], false);
    assert_tool_error(&c[4], "administrators");
    assert_names_field(&c[5], "argument query");
    assert_eq!(r["alive"], 5);

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    let accept = ("Accept", "application/json, text/event-stream");
    let post = |headers: &[(&str, &str)], ct: &str, body: &str| {
        request(s.port, "POST", "/mcp", headers, Some((ct, body.as_bytes())))
    };
    for (auth, code) in [(None, "missing_token"), (Some("Bearer wrong"), "bad_token")] {
        let mut h = vec![accept];
        h.extend(auth.map(|a| ("Authorization", a)));
        let resp = post(&h, "application/json", &init);
        assert_eq!(resp.status, 401, "{auth:?}: {}", String::from_utf8_lossy(&resp.body));
        assert_eq!(resp.json()["code"], code);
    }
    let bearer = format!("Bearer {TOKEN}");
    let ok = [accept, ("Authorization", bearer.as_str())];
    // JSON that is not one JSON-RPC message: 400 with the JSON-RPC error saying so.
    for (body, code, says) in [
        ("this is not JSON", -32700, "not JSON"),
        (r#"{"hello": "world"}"#, -32600, "not a JSON-RPC 2.0 message"),
        (r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#, -32600, "batches"),
    ] {
        let resp = post(&ok, "application/json", body);
        assert_eq!(resp.status, 400, "{body:?}: {}", String::from_utf8_lossy(&resp.body));
        let e = resp.json();
        assert_eq!(e["error"]["code"], code, "{body:?}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(says), "{body:?}: {e}");
    }
    // Not JSON at all, or a request without a session: rmcp's own 4xx, in words.
    let no_session = r#"{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}"#;
    for (ct, body, status) in [("text/plain", "hello", 415), ("application/json", no_session, 400)] {
        let resp = post(&ok, ct, body);
        assert_eq!(
            resp.status,
            status,
            "{ct} {body:?}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert!(
            resp.header("content-type").unwrap().starts_with("text/plain"),
            "{resp:?}"
        );
        assert!(!resp.body.is_empty());
    }
    // The server is still whole.
    assert_eq!(post(&ok, "application/json", &init).status, 200);
}

#[test]
fn http_index_queues_a_job_for_an_administrator() {
    let f = footage();
    let copy = tempfile::tempdir().unwrap();
    crate::common::copy_library(&f.data, &copy.path().join("data"));
    let lib = copy.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    render(
        &lib.join("late.mp4"),
        vec![(Scene::new(Colour::Orange, Shape::Triangle, Colour::Green), 3.0)],
    );
    let s = Server::start(&copy.path().join("data"), &[&lib], &[], Some(TOKEN));
    let out = tempfile::tempdir().unwrap();
    let calls = json!([
        { "tool": "index_status" },
        { "tool": "index", "args": { "path": lib.join("late.mp4").display().to_string() } },
        { "tool": "index", "args": { "path": f.red.display().to_string() } },
    ]);
    let plan = json!({ "transport": "http", "url": s.url("/mcp"), "token": TOKEN, "calls": calls });
    let r = client(plan, out.path());
    let c = r["calls"].as_array().unwrap();
    assert_eq!(c[0]["structured"]["index_allowed"], true);
    assert_eq!(c[1]["is_error"], false, "{}", c[1]);
    let job = c[1]["structured"]["id"].as_i64().unwrap();
    assert_eq!(s.wait_job(job)["state"], "succeeded");
    assert!(
        s.get("/api/videos").json()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["path"].as_str().unwrap().ends_with("late.mp4"))
    );
    // A path outside the server's library folders is refused, naming them.
    assert_tool_error(&c[2], "outside the library folders");
}
