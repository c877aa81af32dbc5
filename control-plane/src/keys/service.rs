//! The key rotations (see [`crate::service`]): each one audits itself and republishes the bundle,
//! which carries the new key set to every edge.

use crate::audit::action::Action;
use crate::service::{Context, ServiceError};
use serde_json::json;

/// How long a next key must have been published before it may sign: the configured
/// pre-publication time, or nothing for a forced (emergency) rotation.
fn prepublish(ctx: &Context<'_>, force: bool) -> i64 {
    if force {
        0
    } else {
        ctx.config.lifetimes.key_prepublish
    }
}

/// The pre-published next token-signing key starts signing; returns its id. `force` is for a
/// compromised key: no pre-publication wait, and the old key retires at once (its tokens stop
/// working; edges that have not fetched the next key reject new tokens until they do).
pub async fn rotate_signing_key(ctx: &Context<'_>, force: bool) -> Result<String, ServiceError> {
    let mut tx = ctx.begin().await?;
    let kid = crate::keys::signing::rotate(
        &mut tx,
        ctx.master,
        ctx.config.lifetimes.longest_access(),
        prepublish(ctx, force),
        force,
    )
    .await?;
    ctx.commit_and_publish(
        tx,
        Action::KeyRotated,
        &format!("key:{kid}"),
        json!({"forced": force}),
    )
    .await?;
    Ok(kid)
}

/// The next bundle-signing key signs from now on and the active one retires; returns its id.
/// Edges that have not pinned the next key refuse every bundle from here on.
pub async fn rotate_bundle_key(ctx: &Context<'_>, force: bool) -> Result<String, ServiceError> {
    let mut tx = ctx.begin().await?;
    let kid = crate::keys::bundle::rotate(&mut tx, ctx.master, prepublish(ctx, force)).await?;
    ctx.commit_and_publish(
        tx,
        Action::BundleKeyRotated,
        &format!("key:{kid}"),
        json!({"forced": force}),
    )
    .await?;
    Ok(kid)
}
