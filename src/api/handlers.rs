//! Thin handlers: extract, validate, call the shared service function, wrap the result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, ServerEvent};
use crate::search::{self, SearchRequest, Segment};
use crate::store::now;

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
pub struct HealthParams {
    /// Also check that the store and both indexes agree (costs a lookup per frame).
    deep: Option<bool>,
}

pub async fn health(state: web::Data<AppState>, p: web::Query<HealthParams>) -> Result<HttpResponse> {
    let counts = state.catalog.store.counts().await?;
    let consistency = match p.deep {
        Some(true) => Some(state.catalog.consistency(5_000).await?),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(json!({
        "consistency": consistency,
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.runner.model().model_name(),
        "dim": state.runner.model().dim(),
        "provider": state.runner.model().provider(),
        "counts": counts,
        "vector_points": state.catalog.vector_points(),
        "libraries": state.roots,
        "watch": state.config.watch,
    })))
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    k: Option<i64>,
    video: Option<i64>,
    min_score: Option<f32>,
    group: Option<String>,
}

pub async fn search(state: web::Data<AppState>, p: web::Query<SearchParams>) -> Result<HttpResponse> {
    let p = p.into_inner();
    let req = SearchRequest {
        query: p.q.unwrap_or_default(),
        k: p.k.unwrap_or(20),
        video: p.video,
        min_score: p.min_score,
    };
    let group = match p.group.as_deref() {
        None | Some("") | Some("none") => false,
        Some("video") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "group must be \"video\" (got {other:?})"
            )));
        }
    };
    let t = Instant::now();
    let res = match search::validate(&req) {
        Ok(_) => {
            // A permit per search: indexing cannot crowd searches out, searches queue fairly.
            let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
            match search::search(&state.catalog, state.runner.model(), &req).await {
                // A switch completed while the query was embedded: once more with the new model.
                Err(search::SearchError::Catalog(crate::catalog::CatalogError::ModelMismatch { .. })) => {
                    search::search(&state.catalog, state.runner.model(), &req).await
                }
                other => other,
            }
        }
        Err(e) => Err(e),
    };
    state.metrics.observe_query(t.elapsed(), res.is_ok());
    let res = res?;
    if !group {
        return Ok(HttpResponse::Ok().json(res));
    }
    Ok(HttpResponse::Ok().json(json!({"query": res.query, "groups": group_by_video(res.results)})))
}

/// Results grouped per video, best video first, each with its segments best first.
fn group_by_video(results: Vec<Segment>) -> Vec<serde_json::Value> {
    let mut order: Vec<i64> = Vec::new();
    let mut groups: std::collections::HashMap<i64, Vec<Segment>> = Default::default();
    for s in results {
        if !groups.contains_key(&s.video_id) {
            order.push(s.video_id);
        }
        groups.entry(s.video_id).or_default().push(s);
    }
    order
        .into_iter()
        .map(|id| {
            let segs = groups.remove(&id).unwrap_or_default();
            let best = segs.iter().map(|s| s.score).fold(f32::MIN, f32::max);
            json!({"video_id": id, "path": segs[0].path, "best_score": best, "segments": segs})
        })
        .collect()
}

pub async fn videos(state: web::Data<AppState>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(json!({"videos": state.catalog.store.videos().await?})))
}

#[derive(Deserialize)]
pub struct VideoParams {
    /// When given, each frame carries its similarity to this query (for timelines).
    q: Option<String>,
}

pub async fn video(state: web::Data<AppState>, id: web::Path<i64>, p: web::Query<VideoParams>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let store = &state.catalog.store;
    let v = store
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    let frames = store.frames_of(id).await?;
    let mut scores: std::collections::HashMap<i64, f32> = Default::default();
    if let Some(q) = p.q.as_deref().filter(|q| !q.trim().is_empty()) {
        search::validate(&SearchRequest::new(q, 1))?;
        let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
        let model = state.runner.model();
        let text = q.to_string();
        let qv_model = model.model_name().to_string();
        let qv = web::block(move || model.embed_texts(&[text.as_str()]))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::from(search::SearchError::Model(e)))?;
        for (fid, vec) in store.vectors_of(id, qv_model.as_str()).await? {
            scores.insert(fid, qv.row(0).iter().zip(&vec).map(|(a, b)| a * b).sum());
        }
    }
    let frames: Vec<_> = frames
        .iter()
        .map(|f| {
            json!({
                "id": f.id, "start": f.start, "end": f.end, "peak": f.peak, "shot": f.shot,
                "thumbnail": format!("/thumbs/{}", f.id),
                "score": scores.get(&f.id),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"video": v, "media": format!("/media/{id}"), "frames": frames})))
}

pub async fn delete_video(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .catalog
        .store
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    state.catalog.remove_video(id).await?;
    let _ = state.events.send(ServerEvent::Library {
        action: "removed".into(),
        video_id: Some(id),
        path: v.path,
    });
    Ok(HttpResponse::NoContent().finish())
}

/// The active model, and the switch to another one when it is under way (with its
/// progress and an estimate of the time left).
pub async fn model(state: web::Data<AppState>) -> Result<HttpResponse> {
    let m = state.runner.model();
    let man = m.manifest();
    let store = &state.catalog.store;
    let switch = store.switch_status().await?;
    Ok(HttpResponse::Ok().json(json!({
        "active": {
            "name": man.name, "dim": man.embedding_dim, "image_size": man.image.size,
            "dir": store.model_dir().await?, "provider": m.provider(),
            "layout": man.origin.as_ref().map(|o| o.layout.clone()),
            "variant": man.origin.as_ref().and_then(|o| o.variant.clone()),
        },
        "switch": switch,
    })))
}

#[derive(Deserialize)]
pub struct SwitchBody {
    /// A model package folder on the server.
    dir: String,
}

/// Starts moving the library to another model; search keeps using the current one
/// until every frame is re-embedded.
pub async fn switch_model(state: web::Data<AppState>, body: web::Json<SwitchBody>) -> Result<HttpResponse> {
    if body.dir.trim().is_empty() {
        return Err(ApiError::bad_request("dir is empty: give the folder of a model package"));
    }
    let id = match state.runner.switch_to(Path::new(&body.dir)).await {
        Ok(id) => id,
        // The package is the client's choice: a bad one is a bad request.
        Err(crate::jobs::JobError::Model(e)) => {
            return Err(ApiError::bad_request(format!("{}: not a usable model package: {e}", body.dir)).with_code("bad_model"));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Accepted().json(job_json(&state, id).await?))
}

/// Forgets every video whose file is gone.
pub async fn prune(state: web::Data<AppState>) -> Result<HttpResponse> {
    let removed = state.catalog.prune().await?;
    for v in &removed {
        let _ = state.events.send(ServerEvent::Library {
            action: "removed".into(),
            video_id: Some(v.id),
            path: v.path.clone(),
        });
    }
    let list: Vec<_> = removed.iter().map(|v| json!({"id": v.id, "path": v.path})).collect();
    Ok(HttpResponse::Ok().json(json!({"removed": list})))
}

#[derive(Deserialize)]
pub struct IndexBody {
    path: String,
}

/// A path inside a library root, resolved (symlinks, `..`); 403 outside, 404 missing.
fn inside_library(state: &AppState, path: &str) -> Result<PathBuf> {
    if path.trim().is_empty() {
        return Err(ApiError::bad_request("path is empty"));
    }
    if state.roots.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            "no library folder is configured (start the server with --library DIR)",
        ));
    }
    let p = Path::new(path);
    if !p.exists() {
        return Err(ApiError::not_found(format!("{path}: no such file or folder")));
    }
    crate::library::inside_roots(p, &state.roots).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            format!(
                "{path} is outside the library folders ({})",
                state
                    .roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

async fn job_json(state: &AppState, id: i64) -> Result<serde_json::Value> {
    let store = &state.catalog.store;
    let job = store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} does not exist")))?;
    let files = store.job_files(id).await?;
    let elapsed = match (job.started_at, job.finished_at) {
        (Some(s), Some(f)) => (f - s).max(1),
        (Some(s), None) => (now() - s).max(1),
        _ => 1,
    };
    let fps = if job.started_at.is_some() {
        job.frames_done as f64 / elapsed as f64
    } else {
        0.0
    };
    let mut v = serde_json::to_value(&job).map_err(ApiError::internal)?;
    v["files"] = serde_json::to_value(files).map_err(ApiError::internal)?;
    v["progress"] = json!({"files_done": job.files_done, "files_total": job.files_total, "frames_done": job.frames_done, "frames_per_second": fps});
    Ok(v)
}

pub async fn index(state: web::Data<AppState>, body: web::Json<IndexBody>) -> Result<HttpResponse> {
    let real = inside_library(&state, &body.path)?;
    let id = state.runner.submit(&[real]).await?;
    Ok(HttpResponse::Accepted().json(job_json(&state, id).await?))
}

/// A safe file name for an upload: the last path component, tame characters only.
fn sanitize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').trim().to_string();
    if clean.is_empty() { "upload".into() } else { clean }
}

pub async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: actix_multipart::Multipart,
) -> Result<HttpResponse> {
    let limit = state.config.max_upload;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("uploads are limited to {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
        && len > limit + 64 * 1024
    {
        return Err(too_big());
    }
    let root = state.roots.first().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_library",
            "no library folder is configured for uploads",
        )
    })?;
    let dir = root.join("uploads");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request(format!("malformed upload: {e}")))?;
        let Some(name) = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(sanitize)
        else {
            continue;
        };
        // Never overwrite: name-1.mp4, name-2.mp4, ...
        let mut target = dir.join(&name);
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) => (s.to_string(), format!(".{e}")),
            None => (name.clone(), String::new()),
        };
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{stem}-{n}{ext}"));
            n += 1;
        }
        let partial = dir.join(format!(
            ".{}.part",
            target.file_name().unwrap_or_default().to_string_lossy()
        ));
        let mut file = tokio::fs::File::create(&partial).await.map_err(ApiError::internal)?;
        let mut written: u64 = 0;
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(ApiError::bad_request(format!("upload interrupted: {e}")));
                }
            };
            written += chunk.len() as u64;
            if written > limit {
                drop(file);
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(too_big());
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(ApiError::internal)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(ApiError::internal)?;
        drop(file);
        tokio::fs::rename(&partial, &target).await.map_err(ApiError::internal)?;
        let id = state.runner.submit(std::slice::from_ref(&target)).await?;
        let mut job = job_json(&state, id).await?;
        job["uploaded"] = json!({"path": target, "bytes": written});
        return Ok(HttpResponse::Accepted().json(job));
    }
    Err(ApiError::bad_request(
        "no file in the upload (send multipart/form-data with a \"file\" field)",
    ))
}

pub async fn jobs(state: web::Data<AppState>) -> Result<HttpResponse> {
    let list = state.catalog.store.jobs(100).await?;
    let mut out = Vec::with_capacity(list.len());
    for j in list {
        out.push(job_json(&state, j.id).await?);
    }
    Ok(HttpResponse::Ok().json(json!({"jobs": out})))
}

pub async fn job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(job_json(&state, id.into_inner()).await?))
}

pub async fn cancel_job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    job_json(&state, id).await?; // 404 for unknown jobs
    let live = state.runner.cancel(id).await?;
    let mut v = job_json(&state, id).await?;
    v["canceled"] = json!(live);
    Ok(HttpResponse::Ok().json(v))
}

/// Server-Sent Events: job progress and library changes, with a keep-alive comment.
pub async fn events(state: web::Data<AppState>) -> HttpResponse {
    let rx = state.events.subscribe();
    let tick = tokio::time::interval(std::time::Duration::from_secs(15));
    let stream = futures_util::stream::unfold((rx, tick, true), |(mut rx, mut tick, first)| async move {
        if first {
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b": connected\n\n")),
                (rx, tick, false),
            ));
        }
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        let kind = match &ev { ServerEvent::Job(_) => "job", ServerEvent::Library { .. } => "library" };
                        let data = serde_json::to_string(&ev).unwrap_or_default();
                        return Some((Ok(web::Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))), (rx, tick, false)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = tick.tick() => return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (rx, tick, false))),
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

pub async fn login_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(LOGIN_HTML)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(state: web::Data<AppState>, form: web::Form<LoginForm>) -> HttpResponse {
    match state.config.token.as_deref() {
        Some(t) if super::constant_time_eq(t.as_bytes(), form.token.as_bytes()) => {
            let cookie = actix_web::cookie::Cookie::build("vidseek_token", form.token.clone())
                .path("/")
                .http_only(true)
                .same_site(actix_web::cookie::SameSite::Strict)
                .finish();
            HttpResponse::SeeOther()
                .insert_header(("Location", "/"))
                .cookie(cookie)
                .finish()
        }
        None => HttpResponse::SeeOther().insert_header(("Location", "/")).finish(),
        Some(_) => HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(LOGIN_HTML.replace("<!--error-->", "<p class=\"error\">Wrong token.</p>")),
    }
}

const LOGIN_HTML: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>vidseek - log in</title><link rel="stylesheet" href="/style.css"></head>
<body class="login"><main><h1>vidseek</h1><p>This server needs its access token.</p><!--error-->
<form method="post" action="/login"><input type="password" name="token" placeholder="token" autofocus required>
<button type="submit">Log in</button></form></main></body></html>"#;

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn upload_names_lose_paths_and_odd_characters() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\videos\\holiday clip.mp4"), "holiday clip.mp4");
        assert_eq!(sanitize(".hidden.mp4"), "hidden.mp4");
        assert_eq!(sanitize("a;rm -rf.mp4"), "a_rm -rf.mp4");
        assert_eq!(sanitize(""), "upload");
    }
}
