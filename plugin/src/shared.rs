//! State shared by all workers of one Envoy through proxy-wasm shared data.
//!
//! Every worker runs its own VM, so each must parse the bundle itself, but only one needs to
//! fetch it. Workers take a lease (compare-and-swap on a shared key) before fetching; the holder
//! publishes the validated bundle bytes, and the others pick them up on their next tick. The
//! control plane therefore sees one long-poll per Envoy instead of one per worker.
//!
//! The bundle is shared with its signature, and every worker verifies it against its own pins
//! before parsing: shared data outlives a configuration change (a pin removed after a leak) and
//! any module in the same VM id may write it, so a copy in shared data is trusted no more than
//! one from the wire.

use crate::host;

/// Shared-data keys, namespaced by the configured cluster and bundle path.
#[derive(Debug, Clone)]
pub struct SharedKeys {
    state: String,
    bundle: String,
    lease: String,
    kid_refresh: String,
}

impl SharedKeys {
    /// Keys for one control-plane source.
    pub fn new(cluster: &str, bundle_path: &str) -> Self {
        let prefix = format!("portcullis|{cluster}|{bundle_path}|");
        SharedKeys {
            state: format!("{prefix}state"),
            bundle: format!("{prefix}bundle"),
            lease: format!("{prefix}lease"),
            kid_refresh: format!("{prefix}kid-refresh"),
        }
    }
}

/// What was last published: bundle version, when the control plane last confirmed it, its ETag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Version of the bundle in the shared `bundle` key.
    pub version: u64,
    /// When a fetch last returned this version (200 or 304), ms since the epoch.
    pub confirmed_ms: u64,
    /// ETag to send as `If-None-Match`.
    pub etag: String,
}

impl Published {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16 + self.etag.len());
        bytes.extend_from_slice(&self.version.to_le_bytes());
        bytes.extend_from_slice(&self.confirmed_ms.to_le_bytes());
        bytes.extend_from_slice(self.etag.as_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let version = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
        let confirmed_ms = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let etag = String::from_utf8(bytes.get(16..)?.to_vec()).ok()?;
        Some(Published {
            version,
            confirmed_ms,
            etag,
        })
    }
}

/// A fetch lease: nobody else fetches before `until_ms`; `failures` drives the backoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// End of the lease (or earliest next fetch), ms since the epoch.
    pub until_ms: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
}

impl Lease {
    fn encode(self) -> Vec<u8> {
        let mut bytes = self.until_ms.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.failures.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Lease {
            until_ms: u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?),
            failures: u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?),
        })
    }
}

/// The published state.
pub fn published(keys: &SharedKeys) -> Published {
    host::shared_get(&keys.state)
        .0
        .and_then(|b| Published::decode(&b))
        .unwrap_or_default()
}

/// The published bundle: its signature (the `Portcullis-Bundle-Signature` value) and its bytes.
pub fn bundle_bytes(keys: &SharedKeys) -> Option<(Vec<u8>, Vec<u8>)> {
    let stored = host::shared_get(&keys.bundle).0?;
    let length = u32::from_le_bytes(stored.get(0..4)?.try_into().ok()?) as usize;
    let signature = stored.get(4..4usize.checked_add(length)?)?.to_vec();
    let body = stored.get(4 + length..)?.to_vec();
    Some((signature, body))
}

/// Publishes a verified bundle with its signature, in one shared value (so that no worker reads
/// a body with another body's signature). Refuses a version older than the published one: a
/// lagging control-plane replica must never roll back revocations or keys.
pub fn publish(
    keys: &SharedKeys,
    version: u64,
    etag: &str,
    signature: &[u8],
    body: &[u8],
    now_ms: u64,
) -> bool {
    let (current, cas) = host::shared_get(&keys.state);
    let current = current
        .and_then(|b| Published::decode(&b))
        .unwrap_or_default();
    if version < current.version {
        return false;
    }
    if version > current.version {
        let Ok(length) = u32::try_from(signature.len()) else {
            return false;
        };
        let mut stored = Vec::with_capacity(4 + signature.len() + body.len());
        stored.extend_from_slice(&length.to_le_bytes());
        stored.extend_from_slice(signature);
        stored.extend_from_slice(body);
        if !host::shared_set(&keys.bundle, &stored, None) {
            return false;
        }
    }
    let next = Published {
        version,
        confirmed_ms: now_ms,
        etag: etag.to_owned(),
    };
    host::shared_set(&keys.state, &next.encode(), cas)
}

/// Records that the control plane confirmed the published bundle (304).
pub fn confirm(keys: &SharedKeys, now_ms: u64) {
    let (current, cas) = host::shared_get(&keys.state);
    if let Some(mut state) = current.and_then(|b| Published::decode(&b)) {
        state.confirmed_ms = now_ms;
        host::shared_set(&keys.state, &state.encode(), cas);
    }
}

/// Takes the fetch lease for `hold_ms` if it is free at `now_ms`; returns the previous lease.
pub fn acquire_fetch(keys: &SharedKeys, now_ms: u64, hold_ms: u64) -> Option<Lease> {
    acquire(&keys.lease, now_ms, hold_ms)
}

/// Releases the fetch lease: nobody fetches before `next_ms`.
pub fn release_fetch(keys: &SharedKeys, next_ms: u64, failures: u32) {
    host::shared_set(
        &keys.lease,
        &Lease {
            until_ms: next_ms,
            failures,
        }
        .encode(),
        None,
    );
}

/// Takes the unknown-`kid` refresh slot, free at most once per `interval_ms`.
pub fn acquire_kid_refresh(keys: &SharedKeys, now_ms: u64, interval_ms: u64) -> bool {
    acquire(&keys.kid_refresh, now_ms, interval_ms).is_some()
}

fn acquire(key: &str, now_ms: u64, hold_ms: u64) -> Option<Lease> {
    let (bytes, cas) = host::shared_get(key);
    let previous = bytes.and_then(|b| Lease::decode(&b)).unwrap_or_default();
    if now_ms < previous.until_ms {
        return None;
    }
    let taken = Lease {
        until_ms: now_ms.saturating_add(hold_ms),
        failures: previous.failures,
    };
    host::shared_set(key, &taken.encode(), cas).then_some(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_state_round_trips() {
        let state = Published {
            version: 7,
            confirmed_ms: 1_700_000_000_000,
            etag: "\"v7\"".into(),
        };
        assert_eq!(Published::decode(&state.encode()), Some(state));
        assert_eq!(Published::decode(b"short"), None);
    }

    #[test]
    fn lease_round_trips() {
        let lease = Lease {
            until_ms: 42,
            failures: 3,
        };
        assert_eq!(Lease::decode(&lease.encode()), Some(lease));
        assert_eq!(Lease::decode(&[1, 2, 3]), None);
    }
}
