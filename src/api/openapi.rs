//! `GET /api/openapi.json`: the API description (OpenAPI 3.1). Written here next to the
//! routes rather than derived, so no outside library reaches into the leaf modules' types;
//! a test checks that every route is described and every description has a route.

use actix_web::HttpResponse;
use serde_json::{Value, json};

fn err() -> Value {
    json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(schema: &str) -> Value {
    json!({"description": "ok", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer"}})
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "vidseek", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Text-to-video semantic search. Errors are {message, code}. When the server has a token, send it as `Authorization: Bearer TOKEN` (or the cookie set by /login)."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["message", "code"], "properties": {"message": {"type": "string"}, "code": {"type": "string"}}},
                "Segment": {"type": "object", "required": ["video_id", "path", "start", "end", "peak", "score", "source"], "properties": {
                    "video_id": {"type": "integer"}, "path": {"type": "string"},
                    "start": {"type": "number", "description": "seconds"}, "end": {"type": "number"}, "peak": {"type": "number"},
                    "score": {"type": "number", "description": "cosine similarity of the best frame"},
                    "source": {"enum": ["visual", "text", "both"]}, "thumbnail": {"type": ["string", "null"]},
                    "frame_id": {"type": ["integer", "null"]}, "text": {"type": "string"}, "rank_score": {"type": "number"}}},
                "SearchResponse": {"type": "object", "properties": {"query": {"type": "string"}, "results": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}},
                    "groups": {"type": "array", "items": {"type": "object", "properties": {"video_id": {"type": "integer"}, "path": {"type": "string"}, "best_score": {"type": "number"}, "segments": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}}}}}},
                "Video": {"type": "object", "properties": {"id": {"type": "integer"}, "path": {"type": "string"}, "status": {"enum": ["indexed", "failed"]}, "error": {"type": ["string", "null"]},
                    "duration": {"type": ["number", "null"]}, "fps": {"type": ["number", "null"]}, "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
                    "codec": {"type": ["string", "null"]}, "frame_count": {"type": "integer"}}},
                "Videos": {"type": "object", "properties": {"videos": {"type": "array", "items": {"$ref": "#/components/schemas/Video"}}}},
                "VideoDetail": {"type": "object", "properties": {"video": {"$ref": "#/components/schemas/Video"}, "media": {"type": "string"}, "frames": {"type": "array", "items": {"type": "object"}}}},
                "Job": {"type": "object", "properties": {"id": {"type": "integer"}, "state": {"enum": ["enqueued", "processing", "succeeded", "failed", "canceled"]},
                    "paths": {"type": "array", "items": {"type": "string"}}, "error": {"type": ["string", "null"]},
                    "progress": {"type": "object", "properties": {"files_done": {"type": "integer"}, "files_total": {"type": "integer"}, "frames_done": {"type": "integer"}, "frames_per_second": {"type": "number"}}},
                    "files": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "state": {"enum": ["indexed", "unchanged", "failed"]}, "error": {"type": ["string", "null"]}, "frames": {"type": "integer"}}}}}},
                "Jobs": {"type": "object", "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}},
                "Health": {"type": "object", "properties": {"status": {"type": "string"}, "model": {"type": "string"}, "provider": {"type": "string"}, "counts": {"type": "object"}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/health": {"get": {"summary": "Status, model, execution provider, counts; with deep=true also whether the store and both indexes agree", "parameters": [{"name": "deep", "in": "query", "schema": {"type": "boolean"}}], "responses": {"200": ok("Health"), "400": err(), "401": err()}}},
            "/api/search": {"get": {"summary": "Search by text", "parameters": [
                {"name": "q", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 1000}},
                {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}},
                {"name": "video", "in": "query", "schema": {"type": "integer"}},
                {"name": "min_score", "in": "query", "schema": {"type": "number"}},
                {"name": "group", "in": "query", "schema": {"enum": ["video"]}}],
                "responses": {"200": ok("SearchResponse"), "400": err(), "401": err(), "404": err()}}},
            "/api/videos": {"get": {"summary": "All videos with status and error", "responses": {"200": ok("Videos"), "401": err()}}},
            "/api/videos/{id}": {
                "get": {"summary": "A video with its frames (and their scores for q)", "parameters": [id_param("id"), {"name": "q", "in": "query", "schema": {"type": "string"}}], "responses": {"200": ok("VideoDetail"), "404": err(), "401": err()}},
                "delete": {"summary": "Remove a video from the library (the file stays)", "parameters": [id_param("id")], "responses": {"204": {"description": "removed"}, "404": err(), "401": err(), "503": err()}}},
            "/api/model": {
                "get": {"summary": "The active model, and the switch to another one under way (progress, estimated seconds left)", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object", "properties": {"active": {"type": "object"}, "switch": {"type": ["object", "null"]}}}}}}, "401": err()}},
                "post": {"summary": "Move the library to another model package without downtime (re-embedded in the background; search keeps the current model until it is done)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["dir"], "properties": {"dir": {"type": "string"}}}}}},
                    "responses": {"202": ok("Job"), "400": err(), "401": err(), "409": err(), "503": err()}}},
            "/api/prune": {"post": {"summary": "Forget every video whose file is gone", "responses": {"200": {"description": "the videos removed", "content": {"application/json": {"schema": {"type": "object", "properties": {"removed": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "path": {"type": "string"}}}}}}}}}, "401": err(), "503": err()}}},
            "/api/index": {"post": {"summary": "Index a file or folder inside a library root",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}}}},
                "responses": {"202": ok("Job"), "400": err(), "401": err(), "403": err(), "404": err(), "503": err()}}},
            "/api/upload": {"post": {"summary": "Upload a video (multipart, field \"file\") into the first library root and index it",
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": {"202": ok("Job"), "400": err(), "401": err(), "403": err(), "413": err(), "503": err()}}},
            "/api/jobs": {"get": {"summary": "Recent jobs", "responses": {"200": ok("Jobs"), "401": err()}}},
            "/api/jobs/{id}": {
                "get": {"summary": "A job with progress and per-file results", "parameters": [id_param("id")], "responses": {"200": ok("Job"), "404": err(), "401": err()}},
                "delete": {"summary": "Cancel a job", "parameters": [id_param("id")], "responses": {"200": ok("Job"), "404": err(), "401": err(), "503": err()}}},
            "/api/events": {"get": {"summary": "Server-Sent Events: job progress (event: job) and library changes (event: library)", "responses": {"200": {"description": "text/event-stream"}, "401": err()}}},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/media/{id}": {"get": {"summary": "The original file of an indexed video, with HTTP Range support", "parameters": [id_param("id")], "responses": {"200": {"description": "the file"}, "206": {"description": "a byte range"}, "404": err(), "401": err()}}},
            "/thumbs/{id}": {"get": {"summary": "JPEG thumbnail of a frame", "parameters": [id_param("id")], "responses": {"200": {"description": "image/jpeg"}, "404": err(), "401": err()}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}, "401": err()}}}
        }
    })
}

pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
