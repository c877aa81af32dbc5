//! Freshness is signed: an edge counts its bundle as current only from a statement the control
//! plane signed (with every 200 and every 304), so someone on the path who answers every poll
//! with `304`, or replays an old signed bundle after a restart, cannot keep it from going stale.

mod common;

use common::*;
use portcullis_wasm_host::Host;

/// Seconds after which a bundle nobody vouched for stops deciding (the default limit).
const STALENESS_SECONDS: u64 = 3_600;

/// Whether the filter answers as a stale or missing bundle makes it (fail closed).
fn unavailable(host: &mut Host) -> bool {
    let _ = get(host, Some(&token(&key())), &[]);
    host.property("portcullis_decision").as_deref() == Some("deny reason=unavailable")
}

/// Moves the clock `seconds` on and answers the poll that follows with a 304 carrying
/// `freshness` (none: the header is left out).
fn answer_304(host: &mut Host, seconds: u64, freshness: Option<String>) {
    host.advance(seconds * 1_000);
    let call = next_poll(host);
    let headers: Vec<(&str, &str)> = freshness
        .as_deref()
        .map(|f| ("portcullis-bundle-freshness", f))
        .into_iter()
        .collect();
    host.respond(call, 304, &headers, b"").unwrap();
}

#[test]
fn a_signed_304_keeps_the_bundle_current() {
    let mut host = ready();
    let later = host.now_ms() + 3_000 * 1_000;
    answer_304(&mut host, 3_000, Some(bundle_freshness(1, later)));
    host.advance(700 * 1_000);
    assert!(
        !unavailable(&mut host),
        "a bundle the control plane vouched for 700 s ago went stale"
    );
}

#[test]
fn an_unsigned_304_does_not_keep_the_bundle_current() {
    let mut host = ready();
    answer_304(&mut host, 3_000, None);
    assert_eq!(counter(&mut host, "bundle.freshness_refused.unsigned"), 1);
    host.advance(700 * 1_000);
    assert!(
        unavailable(&mut host),
        "forged 304s kept a bundle deciding past the staleness limit"
    );
}

#[test]
fn a_304_vouching_for_another_version_is_refused() {
    let mut host = ready();
    let later = host.now_ms() + 3_000 * 1_000;
    answer_304(&mut host, 3_000, Some(bundle_freshness(2, later)));
    assert_eq!(
        counter(&mut host, "bundle.freshness_refused.bad_signature"),
        1
    );
    host.advance(700 * 1_000);
    assert!(unavailable(&mut host));
}

#[test]
fn an_old_signed_bundle_replayed_to_a_restarted_edge_is_refused() {
    let mut host = started();
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    let body = bundle_json(1, &[&key()]);
    // A genuine response recorded two hours ago: bundle signature and freshness both valid.
    let recorded = host.now_ms() - 2 * STALENESS_SECONDS * 1_000;
    let signature = bundle_signature(&body);
    let fresh = bundle_freshness(1, recorded);
    host.respond(
        call,
        200,
        &[
            ("etag", "\"v1\""),
            ("portcullis-bundle-signature", signature.as_str()),
            ("portcullis-bundle-freshness", fresh.as_str()),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(counter(&mut host, "bundle.freshness_refused.too_old"), 1);
    assert_eq!(host.metric("portcullis.bundle.version"), None);
    assert!(unavailable(&mut host), "the replayed bundle decides");
}

#[test]
fn a_bundle_without_a_freshness_statement_is_refused() {
    let mut host = started();
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    let body = bundle_json(1, &[&key()]);
    let signature = bundle_signature(&body);
    host.respond(
        call,
        200,
        &[
            ("etag", "\"v1\""),
            ("portcullis-bundle-signature", signature.as_str()),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(counter(&mut host, "bundle.freshness_refused.unsigned"), 1);
    assert!(unavailable(&mut host));
}
