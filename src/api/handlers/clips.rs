//! Taking moments out: `GET /api/videos/{id}/clip` (a span cut into a file through
//! `export::clip`) and `GET /api/timeline` (a search's moments as OTIO or an EDL).
//!
//! A clip is cut into a temporary file under the data folder while the client waits,
//! then sent from the open file after its name is removed, so nothing is left behind
//! whether the client stays or goes. actix-web keeps a handler running when its client
//! closes the connection, so the cut watches the connection itself ([`Peer`], a
//! duplicate of the socket kept by [`remember_peer`]): a client gone while its clip is
//! cut stops the cut (the `ffmpeg` child killed, the file removed, the slot freed).

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};

use super::Result;
use super::search::{params_of, searched};
use crate::api::dto::ErrorBody;
use crate::api::dto::clips::{ClipParams, TimelineFormat, TimelineParams};
use crate::api::dto::search::SearchQueryString;
use crate::api::{ApiError, AppState};
use crate::export::{self, ClipFormat, ClipRequest, Plan};

#[utoipa::path(get, path = "/api/videos/{id}/clip", tag = "media", params(("id" = i64, Path), ClipParams),
    responses((status = 200, description = "the clip, as an attachment; X-Clip-Start and X-Clip-End say the span cut",
                  content((Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"), (Vec<u8> = "image/gif"), (Vec<u8> = "image/webp"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A span of a video as a file: a frame-accurate re-encode (MP4: H.264 + AAC, WebM:
/// VP9 + Opus), a stream copy from the keyframe at or before `start` (`fast`), or a
/// small GIF preview. Audio and text subtitles are kept. Limited in length and in
/// clips cut at once (`serve --clip-max-seconds`, `--clip-exports`).
pub async fn clip(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    p: web::Query<ClipParams>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let p = p.into_inner();
    let v = crate::api::media::indexed_video(&state, id).await?;
    let format: ClipFormat = p.format.map_or(ClipFormat::Mp4, Into::into);
    let ask = ClipRequest {
        start: p.start,
        end: p.end,
        format,
        fast: p.fast.unwrap_or(false),
    };
    let source = std::path::PathBuf::from(&v.path);
    let limits = state.config.clips.limits.clone();
    let plan = web::block(move || Plan::new(&source, &ask, &limits))
        .await
        .map_err(ApiError::internal)??;
    let Ok(_slot) = state.clip_slots.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!(
                "{} clips are being cut, the most this server cuts at once (serve --clip-exports): try again when one is done",
                state.config.clips.exports
            ),
        ));
    };
    let tmp = &state.config.clips.tmp;
    std::fs::create_dir_all(tmp).map_err(ApiError::io)?;
    let file = tempfile::Builder::new()
        .prefix("clip-")
        .suffix(&format!(".{}", format.extension()))
        .tempfile_in(tmp)
        .map_err(ApiError::io)?;
    // Returning early drops the cut (the child killed), then the file (removed).
    let mut running = plan.start(file.path())?;
    let peer = req.conn_data::<Peer>();
    loop {
        if let Some(r) = running.finished()? {
            r?;
            break;
        }
        if peer.is_some_and(|p| p.gone()) {
            tracing::info!("video {id}: the client left; the clip's cut is stopped");
            return Err(ApiError::bad_request("the client closed the connection"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = std::fs::File::open(file.path()).map_err(ApiError::io)?;
    drop(file);
    let name = export::clip::file_name(std::path::Path::new(&v.path), plan.from, plan.to, format);
    let named = actix_files::NamedFile::from_file(sent, &name)
        .map_err(ApiError::io)?
        .set_content_type(format.mime().parse().expect("valid mime"))
        .set_content_disposition(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name.clone())],
        });
    let mut resp = named.into_response(&req);
    let headers = resp.headers_mut();
    for (k, t) in [("x-clip-start", plan.from), ("x-clip-end", plan.to)] {
        headers.insert(
            actix_web::http::header::HeaderName::from_static(k),
            format!("{t:.6}").parse().expect("a number is a valid header"),
        );
    }
    Ok(resp)
}

/// A duplicate of a connection's socket, to see whether its client is still there.
pub struct Peer(std::net::TcpStream);

impl Peer {
    /// Whether the client closed the connection: its end of the stream reached (a client
    /// waiting for its answer sends nothing more), or the connection broken.
    fn gone(&self) -> bool {
        match self.0.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

/// `HttpServer::on_connect`: keeps a duplicate of each TCP connection's socket (the
/// original is non-blocking, so the duplicate's peeks never wait).
pub fn remember_peer(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    use std::os::fd::AsFd;
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Ok(fd) = tcp.as_fd().try_clone_to_owned()
    {
        ext.insert(Peer(std::net::TcpStream::from(fd)));
    }
}

#[utoipa::path(get, path = "/api/timeline", tag = "search", params(TimelineParams, SearchQueryString),
    responses((status = 200, description = "the results, one clip per moment in rank order, as an attachment",
                  content((Object = "application/json"), (String = "text/plain"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A search's results as a timeline for editing tools: `format=otio` (OpenTimelineIO
/// JSON) or `format=edl` (CMX 3600), source times from each file's own start time. The
/// other parameters are those of `GET /api/search`.
pub async fn timeline(
    state: web::Data<AppState>,
    f: web::Query<TimelineParams>,
    p: web::Query<SearchQueryString>,
) -> Result<HttpResponse> {
    let resp = searched(&state, params_of(p.into_inner())?).await?;
    let moments = resp.moments();
    let clips = web::block(move || export::timeline_clips(&moments))
        .await
        .map_err(ApiError::internal)??;
    let title = format!("vidseek: {}", resp.query);
    let (body, mime, ext) = match f.format {
        TimelineFormat::Otio => (export::otio(&title, &clips).to_string(), "application/json", "otio"),
        TimelineFormat::Edl => (export::edl(&title, &clips), "text/plain; charset=utf-8", "edl"),
    };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(format!("vidseek-search.{ext}"))],
        })
        .body(body))
}
