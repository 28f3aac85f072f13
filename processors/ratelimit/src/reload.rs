//! The rules watcher: polls the file's metadata (modification time, size, inode) every
//! `reload_interval` and swaps in the new rules when they parse; a broken file is logged and
//! counted once, and the old rules stay.
//!
//! File times are coarse (a kernel tick), so a rewrite within the same tick as the previous
//! version can keep every piece of metadata. While the modification time is that recent, the
//! watcher also compares the text itself (the "racy git" problem and its fix).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use crate::limiter::Inner;
use crate::rules::{RuleSet, RulesError};

/// A file version is "racy" while its modification time is this recent.
const RACY: Duration = Duration::from_secs(2);

/// What the watcher last saw of the file.
pub(crate) struct Seen {
    stamp: Option<(SystemTime, u64, u64)>,
    text: Option<String>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

fn read(path: &Path) -> Result<String, RulesError> {
    std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads the rules file for the first time.
pub(crate) fn load(path: &Path) -> Result<(RuleSet, Seen), RulesError> {
    let stamp = stamp(path);
    let text = read(path)?;
    let rules = RuleSet::parse(&text)?;
    Ok((
        rules,
        Seen {
            stamp,
            text: Some(text),
        },
    ))
}

/// The file's text if it may differ from what was seen, updating `seen`.
fn changed(path: &Path, seen: &mut Seen) -> Option<Result<String, RulesError>> {
    let now = stamp(path);
    let racy = now.is_some_and(|(mtime, _, _)| mtime.elapsed().map_or(true, |age| age < RACY));
    if now == seen.stamp && !racy {
        return None;
    }
    seen.stamp = now;
    match read(path) {
        Ok(text) if seen.text.as_deref() == Some(text.as_str()) => None,
        Ok(text) => {
            seen.text = Some(text.clone());
            Some(Ok(text))
        }
        Err(error) if seen.text.is_some() => {
            seen.text = None;
            Some(Err(error))
        }
        Err(_) => None,
    }
}

/// Starts the watcher from what `load` saw; it ends once `inner` is dropped.
pub(crate) fn spawn(inner: Weak<Inner>, path: PathBuf, interval: Duration, mut seen: Seen) {
    let interval = interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let Some(text) = changed(&path, &mut seen) else {
                continue;
            };
            match text.and_then(|text| RuleSet::parse(&text)) {
                Ok(rules) => {
                    inner.metrics.reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(file = %path.display(), rules = rules.rules.len(), "rate limit rules reloaded");
                    inner.set_rules(rules);
                }
                Err(error) => {
                    inner.metrics.reloads.with_label_values(&["error"]).inc();
                    tracing::error!(%error, file = %path.display(), "rate limit rules not reloaded; the previous rules stay");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_in_the_same_tick_is_still_seen_and_an_unchanged_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, "rules: [{limit: 2, window: 1s}]").unwrap();
        let (_, mut seen) = load(&path).unwrap();
        assert!(changed(&path, &mut seen).is_none(), "same text");
        // Same length, written at once: metadata may be identical, the text is not.
        std::fs::write(&path, "rules: [{limit: 4, window: 1s}]").unwrap();
        let text = changed(&path, &mut seen).unwrap().unwrap();
        assert!(text.contains("limit: 4"));
        assert!(changed(&path, &mut seen).is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(
            changed(&path, &mut seen).unwrap().is_err(),
            "a vanished file is reported once"
        );
        assert!(changed(&path, &mut seen).is_none());
    }
}
