//! The tools: their inputs (JSON schemas derived from the types below, so the schema a
//! client sees and the check a call meets are one definition), the protocol handler that
//! lists and dispatches them, and each tool's answer.
//!
//! A call whose arguments do not fit the schema (a missing field, a wrong type, an
//! unknown field, a number out of range) is a protocol error (-32602) naming the field;
//! a call that fits but cannot be answered (a bad query, an unknown video, a time
//! outside it) is a tool error (`isError`) whose text says why. Neither ends the session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::schemars::JsonSchema;
use rmcp::service::{RequestContext, RoleServer};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Caller, Host, McpError};
use crate::catalog::{TextKind, Video};
use crate::search::Segment;
use crate::search::params::SearchParams;

/// Most moments one `search` returns.
pub const MAX_K: u32 = 100;
/// Most pictures one `get_moment` returns.
pub const MAX_IMAGES: u32 = 16;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
struct SearchArgs {
    /// What to find, in vidseek's query language: words and "phrases" (what is seen, said
    /// or written on screen), -negatives, weights ("a beach"^2), filters (path:, ext:,
    /// after:, before:, longer:, shorter:, video:, source:visual|text|ocr, tag:) and
    /// sequences (A >> B).
    #[schemars(length(min = 1, max = 1000))]
    query: String,
    /// Most moments to return (default 10).
    #[schemars(range(min = 1, max = 100))]
    #[serde(default)]
    k: Option<u32>,
    /// Only moments of this video (an id from list_videos).
    #[schemars(range(min = 1))]
    #[serde(default)]
    video_id: Option<i64>,
    /// The cut-off: "auto" (default: only credible matches), "off" (everything ranked),
    /// or a cosine between -1 and 1.
    #[serde(default)]
    min_score: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
struct MomentArgs {
    /// The video's id (from search or list_videos).
    #[schemars(range(min = 1))]
    video_id: i64,
    /// The moment's start, seconds from the video's start.
    #[schemars(range(min = 0.0))]
    start: f64,
    /// The moment's end in seconds (default: the end of the sampled frame at start).
    #[schemars(range(min = 0.0))]
    #[serde(default)]
    end: Option<f64>,
    /// Most pictures to return, spread over the moment (default 4).
    #[schemars(range(min = 1, max = 16))]
    #[serde(default)]
    images: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
struct IndexArgs {
    /// A video file or a folder of them, inside the library (on the server: inside its
    /// library folders).
    #[schemars(length(min = 1, max = 4096))]
    path: String,
}

/// The protocol handler: one per session, all sharing the host.
#[derive(Clone)]
pub(super) struct Vidseek {
    host: Arc<dyn Host>,
}

fn tool<T: JsonSchema + 'static>(name: &'static str, description: &'static str, read_only: bool) -> Tool {
    let schema = schema_for_input::<T>().expect("tool inputs are objects");
    let mut t = Tool::new(name, description, schema);
    t.annotations = Some(ToolAnnotations::new().read_only(read_only).destructive(false));
    t
}

fn tools() -> Vec<Tool> {
    vec![
        tool::<SearchArgs>(
            "search",
            "Find moments in the video library: time spans in videos, best first, each with its \
             file path, start and end (seconds), score and a link that opens the moment in \
             vidseek's player.",
            true,
        ),
        tool::<MomentArgs>(
            "get_moment",
            "Look at a moment: pictures of its sampled frames (JPEG), its subtitles and \
             on-screen text, and its zero-shot tags.",
            true,
        ),
        tool::<NoArgs>(
            "list_videos",
            "The library's videos: id, path, duration, status and frame count.",
            true,
        ),
        tool::<NoArgs>(
            "index_status",
            "How far indexing is: videos indexed and failed, frames, whether the vector index \
             is loaded, and recent jobs.",
            true,
        ),
        tool::<IndexArgs>(
            "index",
            "Index a video file or folder (administrators only: the server's token or an admin key).",
            false,
        ),
    ]
}

/// The arguments parsed as `T`, or a protocol error naming the field at fault.
fn args<T: DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, ErrorData> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.inner().to_string();
        // A missing or unknown field is named by serde's message, not by the path.
        if path == "."
            && let Some(name) = inner.split('`').nth(1)
        {
            path = name.to_string();
        }
        let message = if path == "." {
            format!("invalid arguments: {inner}")
        } else {
            format!("invalid argument {path}: {inner}")
        };
        ErrorData::invalid_params(message, Some(json!({ "field": path })))
    })
}

/// `value` within [min, max] (what the schema says), or a protocol error naming `field`.
fn in_range<T: PartialOrd + std::fmt::Display>(field: &str, value: T, min: T, max: Option<T>) -> Result<T, ErrorData> {
    let high = max.as_ref().is_some_and(|m| value > *m);
    if value < min || high {
        let bound = match &max {
            Some(m) => format!("between {min} and {m}"),
            None => format!("at least {min}"),
        };
        return Err(ErrorData::invalid_params(
            format!("invalid argument {field}: {value} is out of range (it must be {bound})"),
            Some(json!({ "field": field })),
        ));
    }
    Ok(value)
}

/// A string of `min..=max` characters (what the schema says), or a protocol error naming `field`.
fn length<'a>(field: &str, value: &'a str, min: usize, max: usize) -> Result<&'a str, ErrorData> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ErrorData::invalid_params(
            format!("invalid argument {field}: {n} characters (it takes {min} to {max})"),
            Some(json!({ "field": field })),
        ));
    }
    Ok(value)
}

impl Vidseek {
    pub(super) fn new(host: Arc<dyn Host>) -> Self {
        Self { host }
    }

    async fn dispatch(
        &self,
        req: CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let answer = match req.name.as_ref() {
            "search" => {
                let a: SearchArgs = args(req.arguments)?;
                length("query", &a.query, 1, 1000)?;
                let k = in_range("k", a.k.unwrap_or(10), 1, Some(MAX_K))?;
                if let Some(v) = a.video_id {
                    in_range("video_id", v, 1, None)?;
                }
                self.search(a, k, self.base(ctx)).await
            }
            "get_moment" => {
                let a: MomentArgs = args(req.arguments)?;
                in_range("video_id", a.video_id, 1, None)?;
                in_range("start", a.start, 0.0, None)?;
                let images = in_range("images", a.images.unwrap_or(4), 1, Some(MAX_IMAGES))?;
                self.moment(a, images, self.base(ctx)).await
            }
            "list_videos" => {
                args::<NoArgs>(req.arguments)?;
                self.list_videos().await
            }
            "index_status" => {
                args::<NoArgs>(req.arguments)?;
                self.index_status(admin(ctx)).await
            }
            "index" => {
                let a: IndexArgs = args(req.arguments)?;
                length("path", &a.path, 1, 4096)?;
                self.index(a, admin(ctx)).await
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool named {other:?} (tools: search, get_moment, list_videos, index_status, index)"),
                    Some(json!({ "field": "name" })),
                ));
            }
        };
        Ok(answer.unwrap_or_else(|e| {
            tracing::debug!("mcp tool {}: {e}", req.name);
            CallToolResult::error(vec![ContentBlock::text(e.to_string())])
        }))
    }

    /// Where links point: the host's base, else the address this HTTP request came to.
    fn base(&self, ctx: &RequestContext<RoleServer>) -> Option<String> {
        self.host.base_url().or_else(|| {
            let parts = ctx.extensions.get::<http::request::Parts>()?;
            let host = parts.headers.get(http::header::HOST)?.to_str().ok()?;
            Some(format!("http://{host}"))
        })
    }

    async fn search(&self, a: SearchArgs, k: u32, base: Option<String>) -> Result<CallToolResult, McpError> {
        let min_score = a.min_score.clone().unwrap_or_else(|| "auto".into());
        let params = SearchParams {
            video: a.video_id,
            min_score: Some(min_score),
            ..SearchParams::new(a.query.clone(), k as i64)
        };
        let resp = self.host.search(params).await?;
        let moments: Vec<Value> = resp
            .results
            .iter()
            .enumerate()
            .map(|(i, s)| moment_json(i + 1, s, &a.query, base.as_deref()))
            .collect();
        Ok(CallToolResult::structured(json!({
            "query": resp.query,
            "moments": moments,
            "withheld": resp.withheld,
            "cutoff": resp.cutoff,
        })))
    }

    async fn video(&self, id: i64) -> Result<Video, McpError> {
        self.host.catalog().video(id).await?.ok_or(McpError::UnknownVideo(id))
    }

    async fn moment(&self, a: MomentArgs, images: u32, base: Option<String>) -> Result<CallToolResult, McpError> {
        let video = self.video(a.video_id).await?;
        let catalog = self.host.catalog();
        let duration = video.duration.unwrap_or(f64::INFINITY);
        if a.start >= duration {
            return Err(McpError::BadArgument {
                field: "start",
                why: format!(
                    "{} s is past the end of video {} ({duration:.2} s long)",
                    a.start, video.id
                ),
            });
        }
        let frames = catalog.video_frames(video.id).await?;
        let end = match a.end {
            Some(e) if e <= a.start => {
                return Err(McpError::BadArgument {
                    field: "end",
                    why: format!("{e} s is not after start ({} s)", a.start),
                });
            }
            Some(e) => e.min(duration),
            None => frames
                .within(a.start, a.start + 1e-6)
                .map(|(f, _)| f.end)
                .next()
                .unwrap_or(a.start + 1.0)
                .min(duration),
        };
        let within: Vec<_> = frames.within(a.start, end).collect();
        let mut tags: BTreeMap<String, f32> = BTreeMap::new();
        for (_, t) in &within {
            for (label, p) in t.iter() {
                let e = tags.entry(label.to_string()).or_insert(0.0);
                *e = e.max(*p);
            }
        }
        let picked = spread(within.len(), images as usize);
        let mut content = Vec::new();
        let mut pictures = Vec::new();
        for i in picked {
            let f = within[i].0;
            if let Some(jpeg) = catalog.thumbnail(f.id).await? {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
                content.push(ContentBlock::image(b64, "image/jpeg"));
                pictures.push(json!({ "frame_id": f.id, "start": f.start, "end": f.end, "mime_type": "image/jpeg" }));
            }
        }
        let texts = |kind| async move { catalog.texts_of(video.id, kind).await };
        let overlapping = |all: Vec<crate::catalog::Text>| -> Vec<Value> {
            all.into_iter()
                .filter(|t| t.start.unwrap_or(0.0) < end && t.end.unwrap_or(f64::INFINITY) > a.start)
                .map(|t| json!({ "start": t.start, "end": t.end, "text": t.text }))
                .collect()
        };
        let subtitles = overlapping(texts(TextKind::Subtitle).await?);
        let screen = overlapping(texts(TextKind::Ocr).await?);
        let mut tags: Vec<(String, f32)> = tags.into_iter().collect();
        tags.sort_by(|x, y| y.1.total_cmp(&x.1));
        let facts = json!({
            "video_id": video.id,
            "path": video.path,
            "start": a.start,
            "end": end,
            "link": base.as_deref().map(|b| link(b, "", video.id, a.start, end)),
            "file": file_link(&video.path, a.start, end),
            "pictures": pictures,
            "subtitles": subtitles,
            "screen_text": screen,
            "tags": tags.iter().map(|(l, p)| json!({ "label": l, "probability": p })).collect::<Vec<_>>(),
        });
        content.insert(0, ContentBlock::text(facts.to_string()));
        let mut r = CallToolResult::success(content);
        r.structured_content = Some(facts);
        Ok(r)
    }

    async fn list_videos(&self) -> Result<CallToolResult, McpError> {
        let videos = self.host.catalog().videos().await?;
        Ok(CallToolResult::structured(json!({ "videos": videos })))
    }

    async fn index_status(&self, admin: bool) -> Result<CallToolResult, McpError> {
        let catalog = self.host.catalog();
        let counts = catalog.counts().await?;
        let jobs = catalog.queue().recent(10).await?;
        Ok(CallToolResult::structured(json!({
            "model": catalog.model(),
            "videos": counts.videos,
            "indexed": counts.indexed,
            "failed": counts.failed,
            "frames": counts.frames,
            "texts": counts.texts,
            "vectors_ready": catalog.vectors_ready(),
            "vector_points": catalog.vector_points(),
            "index_allowed": self.host.may_index() && admin,
            "jobs": jobs,
        })))
    }

    async fn index(&self, a: IndexArgs, admin: bool) -> Result<CallToolResult, McpError> {
        if !(self.host.may_index() && admin) {
            return Err(McpError::NotAllowed);
        }
        let done = self.host.index(PathBuf::from(a.path)).await?;
        Ok(CallToolResult::structured(done))
    }
}

/// Whether the caller may change the library: on HTTP the scope the API's
/// authentication found; on stdio (no [`Caller`]) the user who started vidseek.
fn admin(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .is_none_or(|c| c.admin)
}

/// Up to `n` indexes spread evenly over `len` items (first and last included).
fn spread(len: usize, n: usize) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    if n == 1 {
        return vec![len / 2];
    }
    let mut v: Vec<usize> = (0..n).map(|i| i * (len - 1) / (n - 1)).collect();
    v.dedup();
    v
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The UI's address of a moment (what the UI's "copy link" gives: `ui/links.js`).
fn link(base: &str, query: &str, video: i64, start: f64, end: f64) -> String {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("q={}&", encode(query))
    };
    format!("{}/?{q}v={video}&t={start:.2}&e={end:.2}", base.trim_end_matches('/'))
}

/// The file itself, with a media fragment for the span (players that read `#t=` seek to it).
fn file_link(path: &str, start: f64, end: f64) -> String {
    let p: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("file://{p}#t={start:.2},{end:.2}")
}

fn moment_json(rank: usize, s: &Segment, query: &str, base: Option<&str>) -> Value {
    json!({
        "rank": rank,
        "video_id": s.video_id,
        "path": s.path,
        "start": s.start,
        "end": s.end,
        "peak": s.peak,
        "score": s.score,
        "source": s.source,
        "text": s.text,
        "tags": s.tags,
        "link": base.map(|b| link(b, query, s.video_id, s.start, s.end)),
        "file": file_link(&s.path, s.start, s.end),
    })
}

impl rmcp::ServerHandler for Vidseek {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("vidseek", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "vidseek searches a video library by what is seen, said and written on screen. \
                 Call search with a description (\"a red circle\"), then get_moment on a result \
                 to see its pictures and text; cite a moment by its link or file path and times.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(self.dispatch(request, &context).await?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_call_names_its_field() {
        let obj = |v: Value| v.as_object().cloned();
        let e = args::<SearchArgs>(obj(json!({ "k": 3 }))).unwrap_err();
        assert!(e.message.contains("query"), "{}", e.message);
        let e = args::<SearchArgs>(obj(json!({ "query": "x", "k": "ten" }))).unwrap_err();
        assert!(e.message.contains("argument k"), "{}", e.message);
        let e = args::<MomentArgs>(obj(json!({ "video_id": 1, "start": 1, "strat": 2 }))).unwrap_err();
        assert!(e.message.contains("strat"), "{}", e.message);
        assert!(in_range("k", 101, 1, Some(100)).unwrap_err().message.contains("k: 101"));
    }

    #[test]
    fn schemas_say_what_is_required_and_the_ranges() {
        let t = tools();
        let search = &t[0].input_schema;
        assert_eq!(search["required"], json!(["query"]));
        assert_eq!(search["properties"]["k"]["maximum"], json!(100));
        let moment = &t[1].input_schema;
        assert_eq!(moment["required"], json!(["video_id", "start"]));
    }

    #[test]
    fn links_and_spreads() {
        assert_eq!(
            link("http://h:1/", "a red circle", 3, 1.0, 2.5),
            "http://h:1/?q=a+red+circle&v=3&t=1.00&e=2.50"
        );
        assert_eq!(file_link("/a b/c.mp4", 1.0, 2.0), "file:///a%20b/c.mp4#t=1.00,2.00");
        assert_eq!(spread(10, 4), vec![0, 3, 6, 9]);
        assert_eq!(spread(2, 4), vec![0, 1]);
    }
}
