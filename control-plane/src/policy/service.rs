//! The policy operations (see [`crate::service`]): publishing a set and activating a stored
//! version, each audited and republished to every edge.

use crate::audit::action::Action;
use crate::policy::set::PolicySet;
use crate::service::{Context, ServiceError};
use serde_json::json;

/// Validates `set` with the edge's engine and its corpus, stores it as a new version authored by
/// the actor and makes it the one in force; returns the version.
pub async fn publish(ctx: &Context<'_>, set: &PolicySet) -> Result<i64, ServiceError> {
    let mut tx = ctx.begin().await?;
    let version =
        crate::policy::store::store_and_activate(&mut tx, set, &ctx.actor.subject).await?;
    ctx.commit_and_publish(
        tx,
        Action::PolicyPublished,
        &format!("policy:{version}"),
        json!({}),
    )
    .await?;
    Ok(version)
}

/// Makes the stored `version` the one in force (a rollback, or forward again).
pub async fn activate(ctx: &Context<'_>, version: i64) -> Result<(), ServiceError> {
    let exists = crate::policy::store::versions(ctx.store)
        .await?
        .iter()
        .any(|v| v.version == version);
    if !exists {
        return Err(ServiceError::NotFound);
    }
    let mut tx = ctx.begin().await?;
    crate::policy::store::activate(&mut tx, version).await?;
    ctx.commit_and_publish(
        tx,
        Action::PolicyActivated,
        &format!("policy:{version}"),
        json!({}),
    )
    .await
}
