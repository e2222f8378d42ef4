//! The package's vocabulary files: labels (`files.labels`) and prompt templates
//! (`files.templates`), one entry a line.

use std::path::Path;

use super::EmbedError;

/// Reads a label file: one label a line, blank lines and `#` comments skipped,
/// duplicates dropped.
pub fn read_labels(path: &Path) -> Result<Vec<String>, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::Manifest {
        path: path.to_path_buf(),
        reason: format!("cannot read the label vocabulary ({e})"),
    })?;
    let labels = parse_labels(&text);
    if labels.is_empty() {
        return Err(EmbedError::Manifest {
            path: path.to_path_buf(),
            reason: "the label vocabulary is empty: write one label a line".into(),
        });
    }
    Ok(labels)
}

/// Reads a prompt template file: one template a line with `{}` where the label goes,
/// blank lines and `#` comments skipped.
pub fn read_templates(path: &Path) -> Result<Vec<String>, EmbedError> {
    let bad = |reason: String| EmbedError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read the prompt templates ({e})")))?;
    let templates = parse_labels(&text);
    if templates.is_empty() {
        return Err(bad(
            "the prompt template file is empty: write one template a line, e.g. `a photo of a {}.`".into(),
        ));
    }
    if let Some(t) = templates.iter().find(|t| t.matches("{}").count() != 1) {
        return Err(bad(format!(
            "the template {t:?} must hold `{{}}` exactly once (where the label goes)"
        )));
    }
    Ok(templates)
}

/// Labels of a label file's text (see [`read_labels`]).
pub fn parse_labels(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| seen.insert(l.to_lowercase()))
        .map(str::to_string)
        .collect()
}
