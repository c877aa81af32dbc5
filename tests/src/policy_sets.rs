//! Generated Cedar policy sets for the policy-count benchmarks (native and in Envoy), so both
//! measure the same sets.

/// The scope the generated sets' one usable grant (`items-read`) asks for.
pub const GRANTED_SCOPE: &str = "api:items:read";

/// `n` policies shaped like large real sets: one grant the benchmark traffic uses, then per-user
/// grants, per-endpoint grants and per-client forbids, each constrained in its head.
pub fn generated(n: usize) -> String {
    let mut text = format!(
        "@id(\"items-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen {{ context.scopes.contains(\"{GRANTED_SCOPE}\") }};\n"
    );
    for i in 1..n {
        text.push_str(&match i % 3 {
            0 => format!("@id(\"user-{i}\")\npermit (principal == User::\"user-{i}\", action in Action::\"read\", resource)\nwhen {{ resource.path like \"/docs/{i}/*\" }};\n"),
            1 => format!("@id(\"report-{i}\")\npermit (principal, action == Action::\"GET\", resource == Endpoint::\"/reports/{i}\")\nwhen {{ context.scopes.contains(\"reports:read\") }};\n"),
            _ => format!("@id(\"client-{i}\")\nforbid (principal == Client::\"client-{i}\", action, resource)\nwhen {{ resource.path like \"/api/*\" }};\n"),
        });
    }
    text
}
