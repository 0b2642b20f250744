//! Comparing a generated catalog with a schema directory, and bringing the directory in line
//! with it: every file not generated any more is stale.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::Path;

use super::{Catalog, ExportError};

/// One way the directory differs from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drift {
    Missing(String),
    Differs(String),
    Stale(String),
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing(path) => write!(f, "missing: {path}"),
            Drift::Differs(path) => write!(f, "differs: {path}"),
            Drift::Stale(path) => write!(f, "stale:   {path}"),
        }
    }
}

/// What `write` would change in `dir`; empty when the directory is up to date.
pub fn compare(dir: &Path, catalog: &Catalog) -> Result<Vec<Drift>, ExportError> {
    let existing = files_under(dir)?;
    let mut drift = Vec::new();
    for (path, text) in catalog {
        if !existing.contains(path) {
            drift.push(Drift::Missing(path.clone()));
        } else if read(&dir.join(path))? != *text {
            drift.push(Drift::Differs(path.clone()));
        }
    }
    drift.extend(
        existing
            .into_iter()
            .filter(|path| !catalog.contains_key(path))
            .map(Drift::Stale),
    );
    drift.sort();
    Ok(drift)
}

/// Writes missing and differing files, deletes stale ones (and directories left empty) and
/// returns what it changed. Files already up to date are not touched.
pub fn write(dir: &Path, catalog: &Catalog) -> Result<Vec<Drift>, ExportError> {
    let drift = compare(dir, catalog)?;
    for change in &drift {
        match change {
            Drift::Missing(path) | Drift::Differs(path) => {
                let target = dir.join(path);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io(parent))?;
                }
                fs::write(&target, &catalog[path]).map_err(io(&target))?;
            }
            Drift::Stale(path) => {
                let target = dir.join(path);
                fs::remove_file(&target).map_err(io(&target))?;
            }
        }
    }
    remove_empty_dirs(dir)?;
    Ok(drift)
}

/// Relative, `/`-separated paths of the files under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Result<BTreeSet<String>, ExportError> {
    let mut found = BTreeSet::new();
    if dir.exists() {
        collect(dir, "", &mut found)?;
    }
    Ok(found)
}

fn collect(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) -> Result<(), ExportError> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{prefix}{name}");
        let path = entry.path();
        if path.is_dir() {
            collect(&path, &format!("{relative}/"), found)?;
        } else {
            found.insert(relative);
        }
    }
    Ok(())
}

/// Removes empty directories below `dir` (not `dir` itself); returns whether `dir` is empty.
fn remove_empty_dirs(dir: &Path) -> Result<bool, ExportError> {
    if !dir.exists() {
        return Ok(true);
    }
    let mut empty = true;
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() && remove_empty_dirs(&path)? {
            fs::remove_dir(&path).map_err(io(&path))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
}

fn read(path: &Path) -> Result<String, ExportError> {
    fs::read_to_string(path).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("schemas-export-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn catalog(files: &[(&str, &str)]) -> Catalog {
        files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn reports_missing_differing_and_stale_files_then_fixes_them() {
        let dir = scratch("drift");
        let old = catalog(&[
            ("a.json", "1\n"),
            ("old/gone.json", "2\n"),
            ("b.json", "3\n"),
        ]);
        write(&dir, &old).expect("writes");
        let new = catalog(&[("a.json", "1\n"), ("b.json", "4\n"), ("new/c.json", "5\n")]);

        let drift = compare(&dir, &new).expect("compares");
        assert_eq!(
            drift,
            vec![
                Drift::Missing("new/c.json".into()),
                Drift::Differs("b.json".into()),
                Drift::Stale("old/gone.json".into()),
            ]
        );

        write(&dir, &new).expect("writes");
        assert_eq!(compare(&dir, &new).expect("compares"), vec![]);
        assert!(!dir.join("old").exists(), "emptied directories are removed");
        fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_missing_directory_lists_every_file_as_missing() {
        let dir = scratch("absent");
        let drift = compare(&dir, &catalog(&[("x.json", "{}\n")])).expect("compares");
        assert_eq!(drift, vec![Drift::Missing("x.json".into())]);
    }
}
