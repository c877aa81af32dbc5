//! `/admin/v1/audit`: the audit log, as JSON pages or NDJSON.

use crate::audit;
use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Audit query: the filters plus `format=ndjson`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(flatten)]
    filter: audit::Filter,
    format: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The rows, by sequence number.
    pub events: Vec<audit::Record>,
    /// The last row's sequence number: the `after` of the next page.
    pub next_after: Option<i64>,
}

/// `GET /admin/v1/audit`.
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "audit",
    security(("bearer" = ["admin:audit"])),
    params(crate::audit::Filter, ("format" = Option<String>, Query, description = "`ndjson` for one JSON row per line")),
    responses((status = 200, description = "`events` and `next_after`", body = AuditPage), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn audit_log(
    call: AdminCall,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let records = audit::list(&call.state().db().pool, &query.filter).await?;
    if query.format.as_deref() == Some("ndjson") {
        let mut body = String::new();
        for record in &records {
            body.push_str(
                &serde_json::to_string(record).map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    let next = records.last().map(|r| r.seq);
    Ok(Json(AuditPage {
        events: records,
        next_after: next,
    })
    .into_response())
}
