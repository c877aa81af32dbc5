//! A policy folder as authors keep it (`policies/`): `schema.cedarschema`, every `*.cedar` file
//! (sorted by name and joined), an optional `entities.json`, and the test corpus in
//! `tests/ALLOW/*.json` and `tests/DENY/*.json`.
//!
//! This is the one reader of the layout: the control plane's `policy load`, `policy test` and
//! server start, the benches and the tests all read folders through it, so a folder means the
//! same everywhere. It is the only module of the crate that touches the file system, and the
//! filter never calls it (its policies come in the bundle).

use crate::corpus::Case;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A file of the folder that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FolderError {
    /// The file or directory.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl FolderError {
    fn at(path: &Path, message: impl ToString) -> Self {
        FolderError {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// A corpus case with where it came from and what it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusCase {
    /// `ALLOW/<name>.json` or `DENY/<name>.json`.
    pub file: String,
    /// Whether the case expects an allow.
    pub expect_allow: bool,
    /// The case.
    pub case: Case,
}

/// The contents of a policy folder, unvalidated.
#[derive(Debug, Clone, PartialEq)]
pub struct Folder {
    /// The Cedar schema (human-readable syntax).
    pub schema: String,
    /// Every `*.cedar` file, sorted by name: its file name and text.
    pub files: Vec<(String, String)>,
    /// `entities.json`, or an empty array without one.
    pub entities: serde_json::Value,
    /// The ALLOW/DENY corpus.
    pub tests: Vec<CorpusCase>,
}

impl Folder {
    /// Reads the folder `dir`.
    pub fn read(dir: &Path) -> Result<Self, FolderError> {
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(|e| FolderError::at(path, e));
        let schema = read(&dir.join("schema.cedarschema"))?;
        let mut files = Vec::new();
        for path in cedar_files(dir)? {
            files.push((file_name(&path), read(&path)?));
        }
        let entities_path = dir.join("entities.json");
        let entities = if entities_path.exists() {
            serde_json::from_str(&read(&entities_path)?)
                .map_err(|e| FolderError::at(&entities_path, e))?
        } else {
            serde_json::Value::Array(Vec::new())
        };
        Ok(Folder {
            schema,
            files,
            entities,
            tests: corpus(dir)?,
        })
    }

    /// The policies of every file, in order, each followed by a newline.
    pub fn policies(&self) -> String {
        let mut policies = String::new();
        for (_, text) in &self.files {
            policies.push_str(text);
            policies.push('\n');
        }
        policies
    }
}

/// Every `*.cedar` file of `dir`, sorted by name.
pub fn cedar_files(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    files_with_extension(dir, "cedar").map_err(|e| FolderError::at(dir, e))
}

/// Reads `dir/tests/ALLOW/*.json` and `dir/tests/DENY/*.json`, sorted by file name; a missing
/// folder holds no cases.
pub fn corpus(dir: &Path) -> Result<Vec<CorpusCase>, FolderError> {
    let mut cases = Vec::new();
    for (folder, expect_allow) in [("ALLOW", true), ("DENY", false)] {
        let folder_path = dir.join("tests").join(folder);
        let Ok(files) = files_with_extension(&folder_path, "json") else {
            continue;
        };
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| FolderError::at(&path, e))?;
            let case = serde_json::from_str(&text).map_err(|e| FolderError::at(&path, e))?;
            cases.push(CorpusCase {
                file: format!("{folder}/{}", file_name(&path)),
                expect_allow,
                case,
            });
        }
    }
    Ok(cases)
}

fn files_with_extension(dir: &Path, extension: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
