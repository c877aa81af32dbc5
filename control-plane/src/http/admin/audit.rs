//! `/admin/v1/audit`: the audit log, as JSON pages or NDJSON.

use crate::audit;
use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::QueryParams;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Audit query: the filters (each optional) plus `format=ndjson`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact actor.
    actor: Option<String>,
    /// Exact action.
    action: Option<String>,
    /// Exact target.
    target: Option<String>,
    /// Rows whose actor or target is this (everything about one principal).
    subject: Option<String>,
    /// Events at or after (epoch seconds).
    since: Option<i64>,
    /// Events before (epoch seconds).
    until: Option<i64>,
    /// Rows after this sequence number (the paging cursor).
    after: Option<i64>,
    /// Rows per page (default 100, at most 1000).
    limit: Option<i64>,
    /// `ndjson` for one JSON row per line.
    format: Option<String>,
}

impl AuditQuery {
    fn filter(self) -> audit::Filter {
        audit::Filter {
            actor: self.actor,
            action: self.action,
            target: self.target,
            subject: self.subject,
            since: self.since,
            until: self.until,
            after: self.after,
            limit: self.limit,
        }
    }
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
    params(AuditQuery),
    responses((status = 200, description = "`events` and `next_after`", body = AuditPage), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn audit_log(
    call: AdminCall,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    let ndjson = query.format.as_deref() == Some("ndjson");
    let records = audit::list(&call.state().db().pool, &query.filter()).await?;
    if ndjson {
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
