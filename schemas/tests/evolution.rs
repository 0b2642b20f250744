//! Schema evolution is checked against a frozen baseline (`schemas/released/v1`): an event
//! version once released keeps its fields and their types, and gains no required field. A
//! breaking change needs a new version and an upcaster (`schemas::upcast`).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn released_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("released/v1")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable file")).expect("json")
}

/// What would break a reader of `released` that now receives `current` (or the reverse for
/// old stored events): removed or retyped fields, and new required fields.
fn breaking_changes(released: &Value, current: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = serde_json::Map::new();
    let old = released["properties"].as_object().unwrap_or(&empty);
    let new = current["properties"].as_object().unwrap_or(&empty);
    for (name, was) in old {
        match new.get(name) {
            None => problems.push(format!("field {name} was removed")),
            Some(now) => {
                for key in ["type", "$ref", "format"] {
                    if was.get(key) != now.get(key) {
                        problems.push(format!("field {name} changed its {key}"));
                    }
                }
            }
        }
    }
    let required_before: Vec<&Value> = released["required"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    for name in current["required"].as_array().into_iter().flatten() {
        if !required_before.contains(&name) {
            problems.push(format!("field {name} became required"));
        }
    }
    problems
}

#[test]
fn released_event_versions_stay_compatible() {
    let released = released_dir();
    let mut all = Vec::new();
    files(&released.join("events"), &mut all);
    assert!(!all.is_empty(), "the baseline is empty");
    let mut problems = Vec::new();
    for path in all {
        let relative = path.strip_prefix(&released).expect("under the baseline");
        let current_path = schemas::export::json_dir().join(relative);
        if !current_path.exists() {
            problems.push(format!(
                "{}: a released event version disappeared",
                relative.display()
            ));
            continue;
        }
        for problem in breaking_changes(&read(&path), &read(&current_path)) {
            problems.push(format!("{}: {problem}", relative.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "breaking changes to released event versions (bump the version and add an upcaster in schemas::upcast):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_a_removed_field() {
    let released = read(&released_dir().join("events/user/UserRegistered.v1.json"));
    let mut current = released.clone();
    current["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("email");
    assert_eq!(
        breaking_changes(&released, &current),
        vec!["field email was removed".to_owned()]
    );
}

#[test]
fn the_check_catches_a_retyped_and_a_newly_required_field() {
    let released = read(&released_dir().join("events/show/ShowCancelled.v1.json"));
    let mut current = released.clone();
    current["properties"]["cancelled_at"]["type"] = "integer".into();
    current["properties"]["reason"] = serde_json::json!({"type": "string"});
    current["required"]
        .as_array_mut()
        .expect("required")
        .push("reason".into());
    let problems = breaking_changes(&released, &current);
    assert!(
        problems.contains(&"field cancelled_at changed its type".to_owned()),
        "{problems:?}"
    );
    assert!(
        problems.contains(&"field \"reason\" became required".to_owned()),
        "{problems:?}"
    );
}
