//! `manifests/` as `kubectl kustomize` renders it (kubectl 1.14 and later; Debian's
//! `kubernetes-client` package, which scripts/test.sh installs when no kubectl is there).

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Renders the kustomization in `dir` (relative to the repository) into its objects.
pub fn render(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo_path(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl not found ({e}): install kubectl or Debian's kubernetes-client (scripts/test.sh does)")
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_documents(&String::from_utf8(out.stdout).unwrap())
}

/// Every non-empty YAML document of `text`.
pub fn parse_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null() && v.as_object().is_some_and(|m| !m.is_empty()))
        .collect()
}

/// The one object of `kind`; panics when there is none or several.
pub fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected in {objects:#?}");
    found[0]
}

/// The one object of `kind` called `name`.
pub fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} expected in {objects:#?}");
    found[0]
}

pub fn kinds(objects: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    k.sort();
    k
}
