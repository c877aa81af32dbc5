//! Cedar's diagnostics rendered the way compilers report: `file:line:column: message`, then the
//! source line with a caret under the span Cedar points at. `portcullis policy validate` prints
//! these, so an author sees which file and where, not an offset into a concatenated set.

use crate::policy::set::PolicyStoreError;
use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use portcullis_authz::folder::Folder;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;

/// One rendered diagnostic.
pub fn render(file: &str, source: &str, diagnostic: &dyn Diagnostic) -> String {
    let mut text = String::new();
    let spans: Vec<_> = diagnostic
        .labels()
        .map(|labels| labels.collect())
        .unwrap_or_default();
    let Some(first) = spans.first() else {
        return format!("{file}: {diagnostic}");
    };
    let (line, column) = position(source, first.offset());
    text.push_str(&format!("{file}:{line}:{column}: {diagnostic}"));
    for span in &spans {
        let (line, column) = position(source, span.offset());
        let line_text = source.lines().nth(line - 1).unwrap_or_default();
        let width = span.len().clamp(
            1,
            line_text.chars().count().saturating_sub(column - 1).max(1),
        );
        text.push_str(&format!(
            "\n{line:>5} | {line_text}\n      | {}{} {}",
            " ".repeat(column - 1),
            "^".repeat(width),
            span.label().unwrap_or_default()
        ));
    }
    if let Some(help) = diagnostic.help() {
        text.push_str(&format!("\n  help: {help}"));
    }
    text
}

/// 1-based line and column (in characters) of a byte offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset.min(source.len())).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Parses every `*.cedar` file of `dir` on its own and validates them together against
/// `schema.cedarschema`, returning every problem with its file, line and caret. Empty when the
/// folder is valid.
pub fn check_dir(dir: &Path) -> Result<Vec<String>, PolicyStoreError> {
    let folder = Folder::read(dir)?;
    Ok(check(&folder.schema, &folder.files))
}

/// [`check_dir`] for texts in hand: `files` are `(name, policy text)` pairs.
pub fn check(schema_text: &str, files: &[(String, String)]) -> Vec<String> {
    let schema = match Schema::from_cedarschema_str(schema_text) {
        Ok((schema, _)) => schema,
        Err(error) => return vec![render("schema.cedarschema", schema_text, &error)],
    };
    let mut problems = Vec::new();
    let mut combined = PolicySet::new();
    let mut origin: HashMap<PolicyId, (&str, &str)> = HashMap::new();
    for (name, text) in files {
        match PolicySet::from_str(text) {
            Err(errors) => {
                problems.extend(errors.iter().map(|e| render(name, text, e)));
            }
            Ok(parsed) => {
                for policy in parsed.policies() {
                    let policy = portcullis_authz::policy::named_by_id(policy);
                    let id = policy.id().clone();
                    if combined.add(policy).is_err() {
                        problems.push(format!("{name}: duplicate policy id `{id}`"));
                        continue;
                    }
                    origin.insert(id, (name, text));
                }
            }
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let result = Validator::new(schema).validate(&combined, ValidationMode::Strict);
    for error in result.validation_errors() {
        match origin.get(error.policy_id()) {
            Some((name, text)) => problems.push(render(name, text, error)),
            None => problems.push(error.to_string()),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        assert_eq!(position("abc", 0), (1, 1));
        assert_eq!(position("ab\ncd", 4), (2, 2));
        assert_eq!(position("é\nx", 3), (2, 1));
        assert_eq!(position("abc", 99), (1, 4));
    }

    #[test]
    fn a_parse_error_names_file_line_and_points_at_it() {
        let source = "permit (principal, action, resource)\nwhen { context.x = 1 };\n";
        let error = PolicySet::from_str(source).unwrap_err();
        let rendered = render("api.cedar", source, &error);
        assert!(rendered.starts_with("api.cedar:2:"), "{rendered}");
        assert!(rendered.contains("when { context.x = 1 };"), "{rendered}");
        assert!(rendered.contains('^'), "{rendered}");
    }
}
