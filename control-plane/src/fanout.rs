//! Bundle changes fan out between replicas through Redis pub/sub: the replica that commits a
//! change publishes the new bundle version on [`CHANNEL`], and every replica's listener re-reads
//! the bundle at once, waking its edges' long-polls. Redis only carries the wake-up; the bundle
//! itself always comes from the database, and a periodic database poll (the follower) catches
//! anything missed while Redis is away.

use crate::redis::{Connection, Reply};
use crate::state::AppState;
use std::time::Duration;

/// The pub/sub channel carrying bundle versions.
pub const CHANNEL: &str = "portcullis:bundle";

/// Publishes `version` in the background; a failure only delays other replicas until their
/// next database poll.
pub fn announce(url: String, version: i64) {
    tokio::spawn(async move {
        let published = async {
            let mut connection = Connection::open(&url).await?;
            connection
                .command(&["PUBLISH", CHANNEL, &version.to_string()])
                .await
        };
        if let Err(error) = published.await {
            tracing::debug!(%error, "bundle change not announced; replicas will poll");
        }
    });
}

/// Listens on [`CHANNEL`] until the process ends, reconnecting after failures.
pub fn spawn_listener(state: AppState, url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen(&state, &url).await {
                tracing::debug!(%error, "bundle fan-out listener reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(state: &AppState, url: &str) -> Result<(), crate::redis::RedisError> {
    let mut connection = Connection::open(url).await?;
    connection.command(&["SUBSCRIBE", CHANNEL]).await?;
    // Anything published while this listener was away is picked up now.
    let _ = state.refresh().await;
    loop {
        let message = connection.next_message().await?;
        if is_message(&message) {
            if let Err(error) = state.refresh().await {
                tracing::warn!(%error, "bundle refresh failed; keeping the last one");
            }
        }
    }
}

/// Whether a pushed reply is a `message` on our channel (not a subscription confirmation).
fn is_message(reply: &Reply) -> bool {
    matches!(reply, Reply::Array(Some(items))
        if matches!(items.first(), Some(Reply::Bulk(Some(kind))) if kind.as_slice() == b"message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_wake_the_listener() {
        let message = Reply::Array(Some(vec![
            Reply::Bulk(Some(b"message".to_vec())),
            Reply::Bulk(Some(CHANNEL.as_bytes().to_vec())),
            Reply::Bulk(Some(b"7".to_vec())),
        ]));
        let confirmation = Reply::Array(Some(vec![
            Reply::Bulk(Some(b"subscribe".to_vec())),
            Reply::Bulk(Some(CHANNEL.as_bytes().to_vec())),
            Reply::Integer(1),
        ]));
        assert!(is_message(&message));
        assert!(!is_message(&confirmation));
        assert!(!is_message(&Reply::Integer(1)));
    }
}
