//! Thin handlers: extract, validate, call the shared service function, wrap the result
//! in the API's types (`dto`). Each carries its OpenAPI description.

use std::path::{Path, PathBuf};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::dto::*;
use super::{ApiError, AppState, ServerEvent};
use crate::search::{self, SearchRequest};

type Result<T> = std::result::Result<T, ApiError>;

#[utoipa::path(get, path = "/api/health", tag = "status", params(HealthParams),
    responses((status = 200, body = Health), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Status, model, execution provider, counts; with deep=true whether the store and both
/// indexes agree.
pub async fn health(state: web::Data<AppState>, p: web::Query<HealthParams>) -> Result<HttpResponse> {
    let counts = state.catalog.counts().await?;
    let consistency = match p.deep {
        Some(true) => Some(state.catalog.consistency(5_000).await?.into()),
        _ => None,
    };
    let model = state.runner.model();
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model: model.model_name().into(),
        dim: model.dim(),
        provider: model.provider().into(),
        counts: counts.into(),
        vector_points: state.catalog.vector_points(),
        vectors_ready: state.catalog.vectors_ready(),
        libraries: state.roots.iter().map(|r| r.display().to_string()).collect(),
        watch: state.config.watch,
        consistency,
    }))
}

#[utoipa::path(get, path = "/api/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Search by text (the query language) or by a stored frame: moments (time spans) in
/// videos, best first; by default only credible matches.
pub async fn search(state: web::Data<AppState>, p: web::Query<SearchParams>) -> Result<HttpResponse> {
    let p = p.into_inner();
    let group = p.group == Some(GroupBy::Video);
    run_search(&state, request_of(p)?, group).await
}

/// A search request from the query parameters.
fn request_of(p: SearchParams) -> Result<SearchRequest> {
    let mut req = SearchRequest::new(p.q, p.k.unwrap_or(20));
    req.video = p.video;
    req.frame = p.frame;
    if let Some(m) = p.min_score.as_deref() {
        req.min_score = m.parse()?;
    }
    if let Some(w) = p.image_weight {
        req.image_weight = w;
    }
    if let Some(t) = p.templates.as_deref() {
        req.templates = templates_param(t)?;
    }
    req.tags.extend(p.tag);
    req.like = frame_ids("like", p.like.as_deref())?;
    req.unlike = frame_ids("unlike", p.unlike.as_deref())?;
    Ok(req)
}

/// `templates=`: auto, none or `|`-separated templates, at most 500 characters.
fn templates_param(t: &str) -> Result<search::prompts::Templates> {
    if t.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "templates takes at most 500 characters (a model's own set is used with templates=auto)",
        ));
    }
    Ok(t.parse()?)
}

/// `1,2,3`: frame ids.
fn frame_ids(what: &str, v: Option<&str>) -> Result<Vec<i64>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if v.split(',').count() > 50 {
        return Err(ApiError::bad_request(format!("{what} takes at most 50 frame ids")));
    }
    v.split(',')
        .map(|t| t.trim().parse::<i64>().ok().filter(|id| *id > 0))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what} takes frame ids separated by commas, e.g. {what}=12,40 (got {v:?})"
            ))
        })
}

#[utoipa::path(post, path = "/api/search", tag = "search", params(SearchParams),
    request_body(content = SearchForm, content_type = "multipart/form-data"),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Search by an uploaded picture (the `image` field), optionally with text (`q`): a
/// weighted sum of the two. The parameters are those of `GET /api/search`.
pub async fn search_image(
    state: web::Data<AppState>,
    p: web::Query<SearchParams>,
    mut payload: actix_multipart::Multipart,
) -> Result<HttpResponse> {
    let p = p.into_inner();
    let group = p.group == Some(GroupBy::Video);
    let mut req = request_of(p)?;
    let mut image: Option<(String, Vec<u8>)> = None;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request(format!("malformed form: {e}")))?;
        let key = field.name().unwrap_or_default().to_string();
        if key != "image" {
            return Err(ApiError::bad_request(format!(
                "unknown form field {key:?}: the form has one file field, image (the other parameters go in the query, as for GET)"
            )));
        }
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(sanitize);
        let limit = search::MAX_IMAGE_BYTES;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the image is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        image = Some((name.unwrap_or_else(|| "the uploaded image".into()), bytes));
    }
    let Some((name, bytes)) = image else {
        return Err(ApiError::bad_request(
            "no image in the form (send multipart/form-data with an \"image\" file field; for text alone use GET /api/search)",
        ));
    };
    req.image = Some(search::ImageQuery::Bytes { name, bytes });
    run_search(&state, req, group).await
}

/// Validates, takes a search permit, searches (once more when a model switch finished
/// meanwhile), records the metrics.
async fn run_search(state: &AppState, req: SearchRequest, group: bool) -> Result<HttpResponse> {
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
    Ok(HttpResponse::Ok().json(SearchResponse::new(res?, group)))
}

#[utoipa::path(post, path = "/api/eval", tag = "search", params(EvalParams),
    request_body(content = Vec<TruthDto>, description = "known moments: at most 1000"),
    responses((status = 200, body = EvalReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Evaluate search against known moments: R@1/5/10, mAP, the median peak error, misses.
pub async fn eval(
    state: web::Data<AppState>,
    p: web::Query<EvalParams>,
    body: web::Json<Vec<TruthDto>>,
) -> Result<HttpResponse> {
    let truth: Vec<search::eval::Truth> = body
        .into_inner()
        .into_iter()
        .map(|t| search::eval::Truth {
            query: t.query,
            path: t.path,
            start: t.start,
            end: t.end,
        })
        .collect();
    if truth.len() > 1000 {
        return Err(ApiError::bad_request(format!(
            "{} truth entries; the API takes at most 1000 (use vidseek eval)",
            truth.len()
        )));
    }
    search::eval::check(&truth)?;
    let min_score = match p.min_score.as_deref() {
        Some(m) => m.parse()?,
        None => search::MinScore::Off,
    };
    let templates = match p.templates.as_deref() {
        Some(t) => templates_param(t)?,
        None => search::prompts::Templates::Auto,
    };
    let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
    let report = search::eval::run(&state.catalog, state.runner.model(), &truth, min_score, &templates).await?;
    Ok(HttpResponse::Ok().json(EvalReport::from(report)))
}

#[utoipa::path(get, path = "/api/tags", tag = "search",
    responses((status = 200, body = Tags), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Every zero-shot tag in use with its moments and videos, most moments first (the tags
/// are brought up to date first).
pub async fn tags(state: web::Data<AppState>) -> Result<HttpResponse> {
    let tags = search::tags::counts(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Tags {
        tags: tags
            .into_iter()
            .map(|t| TagDto {
                label: t.label,
                moments: t.moments,
                videos: t.videos,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/labels", tag = "search",
    responses((status = 200, body = Labels), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The library's label vocabulary.
pub async fn labels(state: web::Data<AppState>) -> Result<HttpResponse> {
    let (labels, set) = search::tags::labels(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: !set }))
}

#[utoipa::path(put, path = "/api/labels", tag = "search", request_body = LabelsBody,
    responses((status = 200, body = Labels), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Sets the vocabulary; the tags are recomputed from the stored vectors (no decoding).
pub async fn set_labels(state: web::Data<AppState>, body: web::Json<LabelsBody>) -> Result<HttpResponse> {
    let text = body.into_inner().labels.join("\n");
    let labels = search::tags::set_labels(&state.catalog, Some(&text)).await?;
    search::tags::ensure(&state.catalog, &state.runner.model()).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: false }))
}

#[utoipa::path(delete, path = "/api/labels", tag = "search",
    responses((status = 200, body = Labels), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Back to the default vocabulary.
pub async fn reset_labels(state: web::Data<AppState>) -> Result<HttpResponse> {
    search::tags::set_labels(&state.catalog, None).await?;
    let model = state.runner.model();
    search::tags::ensure(&state.catalog, &model).await?;
    let (labels, _) = search::tags::labels(&state.catalog, &model).await?;
    Ok(HttpResponse::Ok().json(Labels { labels, default: true }))
}

#[utoipa::path(get, path = "/api/probes", tag = "search",
    responses((status = 200, body = Probes), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Few-shot probes saved as tags.
pub async fn probes(state: web::Data<AppState>) -> Result<HttpResponse> {
    let probes = state.catalog.probes().await?;
    Ok(HttpResponse::Ok().json(Probes {
        probes: probes
            .into_iter()
            .map(|p| ProbeDto {
                name: p.name,
                q: p.query,
                like: p.likes,
                unlike: p.unlikes,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/probes", tag = "search", request_body = ProbeDto,
    responses((status = 200, body = Probes), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Saves a few-shot probe ("more like these" frames) as a named tag: every frame it
/// finds credible gets the tag.
pub async fn save_probe(state: web::Data<AppState>, body: web::Json<ProbeDto>) -> Result<HttpResponse> {
    let p = body.into_inner();
    if p.q.chars().count() > search::MAX_QUERY_CHARS {
        return Err(search::SearchError::QueryTooLong(p.q.chars().count()).into());
    }
    let model = state.runner.model();
    // Trained once here so that unknown frames are a 404 now, not a skipped tag later.
    search::tags::train_probe(&state.catalog, &model, &p.like, &p.unlike, None).await?;
    search::tags::save_probe(
        &state.catalog,
        crate::catalog::SavedProbe {
            name: p.name,
            query: p.q,
            likes: p.like,
            unlikes: p.unlike,
        },
    )
    .await?;
    search::tags::ensure(&state.catalog, &model).await?;
    probes(state).await
}

#[utoipa::path(delete, path = "/api/probes/{name}", tag = "search", params(("name" = String, Path)),
    responses((status = 200, body = Probes), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
/// Deletes a saved probe (and its tag).
pub async fn delete_probe(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let name = name.into_inner();
    if !search::tags::delete_probe(&state.catalog, &name).await? {
        return Err(ApiError::not_found(format!("no saved probe is named {name:?}")));
    }
    search::tags::ensure(&state.catalog, &state.runner.model()).await?;
    probes(state).await
}

#[utoipa::path(get, path = "/api/videos", tag = "library",
    responses((status = 200, body = Videos), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// All videos with status and error.
pub async fn videos(state: web::Data<AppState>) -> Result<HttpResponse> {
    let videos = state.catalog.videos().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(Videos { videos }))
}

#[utoipa::path(get, path = "/api/videos/{id}", tag = "library", params(("id" = i64, Path), VideoParams),
    responses((status = 200, body = VideoDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A video with its frames (and their scores for q).
pub async fn video(state: web::Data<AppState>, id: web::Path<i64>, p: web::Query<VideoParams>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .catalog
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    let mut scores: std::collections::HashMap<i64, f32> = Default::default();
    if let Some(q) = p.q.as_deref()
        && q.chars().count() > search::MAX_QUERY_CHARS
    {
        return Err(search::SearchError::QueryTooLong(q.chars().count()).into());
    }
    if let Some(q) = p.q.as_deref().filter(|q| !q.trim().is_empty()) {
        search::validate(&SearchRequest::new(q, 1))?;
        let _permit = state.permits.acquire().await.map_err(ApiError::internal)?;
        for (f, s) in search::group::timeline(&state.catalog, state.runner.model(), id, q).await? {
            scores.insert(f.id, s);
        }
    }
    let frames = state
        .catalog
        .frames_of(id)
        .await?
        .into_iter()
        .map(|f| FrameDto {
            thumbnail: thumb_url(f.id),
            score: scores.get(&f.id).copied(),
            id: f.id,
            start: f.start,
            end: f.end,
            peak: f.peak,
            shot: f.shot,
        })
        .collect();
    Ok(HttpResponse::Ok().json(VideoDetail {
        media: media_url(id),
        video: v.into(),
        frames,
    }))
}

#[utoipa::path(delete, path = "/api/videos/{id}", tag = "library", params(("id" = i64, Path)),
    responses((status = 204, description = "removed (the file stays)"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Remove a video from the library (the file stays).
pub async fn delete_video(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .catalog
        .video(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("video {id} does not exist")))?;
    if !state.catalog.remove_video(id).await? {
        return Err(ApiError::not_found(format!("video {id} does not exist")));
    }
    let _ = state.events.send(ServerEvent::Library {
        action: "removed".into(),
        video_id: Some(id),
        path: v.path,
    });
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/prune", tag = "library",
    responses((status = 200, body = Pruned), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Forget every video whose file is gone.
pub async fn prune(state: web::Data<AppState>) -> Result<HttpResponse> {
    let removed = state.catalog.prune().await?;
    for v in &removed {
        let _ = state.events.send(ServerEvent::Library {
            action: "removed".into(),
            video_id: Some(v.id),
            path: v.path.clone(),
        });
    }
    Ok(HttpResponse::Ok().json(Pruned {
        removed: removed
            .into_iter()
            .map(|v| Removed { id: v.id, path: v.path })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/model", tag = "model",
    responses((status = 200, body = ModelDto), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The active model, and the switch to another one under way (its progress and an
/// estimate of the time left).
pub async fn model(state: web::Data<AppState>) -> Result<HttpResponse> {
    let m = state.runner.model();
    let man = m.manifest();
    Ok(HttpResponse::Ok().json(ModelDto {
        active: ActiveModel {
            name: man.name.clone(),
            dim: man.embedding_dim,
            image_size: man.image.size,
            dir: state.catalog.model_dir().await?.map(|d| d.display().to_string()),
            provider: m.provider().into(),
            layout: man.origin.as_ref().map(|o| o.layout.clone()),
            variant: man.origin.as_ref().and_then(|o| o.variant.clone()),
        },
        switch: state.catalog.switch_status().await?.map(Into::into),
    }))
}

#[utoipa::path(post, path = "/api/model", tag = "model", request_body = SwitchBody,
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Move the library to another model package without downtime: re-embedded in the
/// background, search keeps the current model until it is done.
pub async fn switch_model(state: web::Data<AppState>, body: web::Json<SwitchBody>) -> Result<HttpResponse> {
    if body.dir.trim().is_empty() {
        return Err(ApiError::bad_request(
            "dir is empty: give the folder of a model package",
        ));
    }
    let id = state
        .runner
        .switch_to(Path::new(&body.dir))
        .await
        .map_err(|e| match e {
            // The package is the client's choice: name it.
            crate::jobs::JobError::Model(m) => {
                ApiError::bad_request(format!("{}: not a usable model package: {m}", body.dir)).with_code("bad_model")
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Accepted().json(job_dto(&state, id).await?))
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

async fn job_dto(state: &AppState, id: i64) -> Result<JobDto> {
    let queue = state.catalog.queue();
    let job = queue
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} does not exist")))?;
    Ok(JobDto::new(job, queue.files(id).await?))
}

#[utoipa::path(post, path = "/api/index", tag = "library", request_body = IndexBody,
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Index a file or folder inside a library root.
pub async fn index(state: web::Data<AppState>, body: web::Json<IndexBody>) -> Result<HttpResponse> {
    let real = inside_library(&state, &body.path)?;
    let id = state.runner.submit(&[real]).await?;
    Ok(HttpResponse::Accepted().json(job_dto(&state, id).await?))
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

#[utoipa::path(post, path = "/api/upload", tag = "library",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = JobDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Upload a video into the first library root and index it (the name is made safe and
/// never overwrites a file).
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
    std::fs::create_dir_all(&dir).map_err(ApiError::io)?;
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
        let mut file = tokio::fs::File::create(&partial).await.map_err(ApiError::io)?;
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
                .map_err(ApiError::io)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(ApiError::io)?;
        drop(file);
        tokio::fs::rename(&partial, &target).await.map_err(ApiError::io)?;
        let id = state.runner.submit(std::slice::from_ref(&target)).await?;
        let mut job = job_dto(&state, id).await?;
        job.uploaded = Some(Uploaded {
            path: target.display().to_string(),
            bytes: written,
        });
        return Ok(HttpResponse::Accepted().json(job));
    }
    Err(ApiError::bad_request(
        "no file in the upload (send multipart/form-data with a \"file\" field)",
    ))
}

#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, body = Jobs), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Recent jobs, newest first.
pub async fn jobs(state: web::Data<AppState>) -> Result<HttpResponse> {
    let queue = state.catalog.queue();
    let mut out = Vec::new();
    for j in queue.recent(100).await? {
        let files = queue.files(j.id).await?;
        out.push(JobDto::new(j, files));
    }
    Ok(HttpResponse::Ok().json(Jobs { jobs: out }))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// A job with progress and per-file results.
pub async fn job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(job_dto(&state, id.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Cancel a job (a switch is abandoned: the library keeps its model).
pub async fn cancel_job(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = id.into_inner();
    job_dto(&state, id).await?; // 404 for unknown jobs
    let live = state.runner.cancel(id).await?;
    let mut v = job_dto(&state, id).await?;
    v.canceled = Some(live);
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(get, path = "/api/events", tag = "jobs",
    responses((status = 200, description = "Server-Sent Events: job progress (event: job) and library changes (event: library)", content_type = "text/event-stream"),
              (status = 401, body = ErrorBody)))]
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
