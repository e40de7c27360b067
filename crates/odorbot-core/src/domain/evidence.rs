//! Evidence of a suspected breach, kept by odorbot: each item (a pod's log for the
//! window, the namespace's events, the pod specs, the NetworkPolicies) is stored whole
//! with its SHA-256, under size bounds decided here, and listed, paged and exported from
//! what was stored, so the hash a reader checks is the hash of what was kept.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::view::{Message, code, escape};

/// No single item is kept beyond this; a pod's log is read with this `limitBytes`.
pub const MAX_ITEM_BYTES: usize = 1024 * 1024;
/// One collection keeps at most this much in all; items past it are listed as not kept.
pub const MAX_COLLECTION_BYTES: usize = 16 * 1024 * 1024;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Log,
    Events,
    PodSpecs,
    NetworkPolicies,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Self::Log,
        Self::Events,
        Self::PodSpecs,
        Self::NetworkPolicies,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Events => "events",
            Self::PodSpecs => "pod_specs",
            Self::NetworkPolicies => "network_policies",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One item as read, before it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Unique within the collection: `log/<pod>/<container>`, `events`, …
    pub name: String,
    pub kind: Kind,
    pub content: String,
    /// The source held more than was read (the log's `limitBytes`).
    pub truncated: bool,
}

/// One kept item: what the store holds and every listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub name: String,
    pub kind: Kind,
    pub bytes: usize,
    /// Lowercase hex of the SHA-256 of `content`'s UTF-8 bytes.
    pub sha256: String,
    pub truncated: bool,
    pub collected_at_ms: i64,
    pub collected_by: String,
    #[serde(skip)]
    pub content: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a collection keeps and what it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub kept: Vec<Item>,
    /// Names of items past [`MAX_COLLECTION_BYTES`].
    pub left_out: Vec<String>,
}

impl Collection {
    /// Hashes what was read and applies the bounds (a NUL becomes U+FFFD, as the store's
    /// text cannot hold it): an item beyond [`MAX_ITEM_BYTES`] is
    /// cut at a character boundary and marked truncated; items are kept in the order read
    /// until the collection's bound, and the rest are named as left out.
    pub fn keep(reads: Vec<Read>, by: &str, at_ms: i64) -> Self {
        let (mut kept, mut left_out, mut total) = (Vec::new(), Vec::new(), 0usize);
        for mut read in reads {
            // PostgreSQL's text cannot hold NUL; the hash covers what is kept.
            if read.content.contains('\0') {
                read.content = read.content.replace('\0', "\u{fffd}");
            }
            if read.content.len() > MAX_ITEM_BYTES {
                let mut cut = MAX_ITEM_BYTES;
                while !read.content.is_char_boundary(cut) {
                    cut -= 1;
                }
                read.content.truncate(cut);
                read.truncated = true;
            }
            if total + read.content.len() > MAX_COLLECTION_BYTES {
                left_out.push(read.name);
                continue;
            }
            total += read.content.len();
            kept.push(Item {
                sha256: sha256_hex(read.content.as_bytes()),
                bytes: read.content.len(),
                name: read.name,
                kind: read.kind,
                truncated: read.truncated,
                collected_at_ms: at_ms,
                collected_by: by.to_owned(),
                content: read.content,
            });
        }
        Self { kept, left_out }
    }
}

/// A pod as evidence: its spec and status without what only the API server needs
/// (`managedFields`), and without literal environment values, which can hold credentials
/// (a value from a Secret or ConfigMap is a reference and stays).
pub fn redact_pod(mut pod: serde_json::Value) -> serde_json::Value {
    if let Some(meta) = pod.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    let Some(spec) = pod.get_mut("spec") else {
        return pod;
    };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(|c| c.as_array_mut()) else {
            continue;
        };
        for container in containers {
            let Some(env) = container.get_mut("env").and_then(|e| e.as_array_mut()) else {
                continue;
            };
            for var in env {
                if let Some(value) = var.get_mut("value") {
                    let len = value.as_str().map_or(0, str::len);
                    *value = serde_json::Value::String(format!("(redacted, {len} bytes)"));
                }
            }
        }
    }
    pod
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// One line per item: name, size, whether cut, the full hash (so it can be checked).
pub fn lines(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            format!(
                "• {} — {}{} — sha256 {}",
                code(&i.name),
                size(i.bytes),
                if i.truncated {
                    " (cut at the bound)"
                } else {
                    ""
                },
                code(&i.sha256)
            )
        })
        .collect()
}

/// What a collection's thread message says.
pub fn render_collected(incident: &str, c: &Collection) -> Message {
    let total: usize = c.kept.iter().map(|i| i.bytes).sum();
    let mut text = format!(
        "🔒 *Evidence kept for {}*: {} items, {}. `/odor evidence {}` lists them, `--json` exports them.\n{}",
        escape(incident),
        c.kept.len(),
        size(total),
        escape(incident),
        lines(&c.kept).join("\n")
    );
    if !c.left_out.is_empty() {
        text.push_str(&format!(
            "\n:warning: Not kept, past the {} bound of one collection: {}",
            size(MAX_COLLECTION_BYTES),
            c.left_out
                .iter()
                .map(|n| code(n))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Message::text(text)
}

/// The page to the security role: who, for what, and the evidence list.
pub fn page_text(mentions: &str, what: &str, items: &[Item]) -> String {
    let list = if items.is_empty() {
        "No evidence has been kept yet.".to_owned()
    } else {
        format!(
            "Evidence kept ({} items):\n{}",
            items.len(),
            lines(items).join("\n")
        )
    };
    format!("🚨 *Security team* {mentions}: {}. {list}", escape(what))
}

/// The listing `/odor evidence <incident>` replies with.
pub fn render_list(incident: &str, items: &[Item]) -> Message {
    if items.is_empty() {
        return Message::text(format!("No evidence is kept for {}.", escape(incident)));
    }
    let total: usize = items.iter().map(|i| i.bytes).sum();
    Message::text(format!(
        "*Evidence for {}*: {} items, {}; the export is in this channel.\n{}",
        escape(incident),
        items.len(),
        size(total),
        lines(items).join("\n")
    ))
}

#[derive(Serialize)]
struct ExportItem<'a> {
    #[serde(flatten)]
    item: &'a Item,
    content: &'a str,
}

#[derive(Serialize)]
struct Export<'a> {
    incident: &'a str,
    exported_by: &'a str,
    exported_at_ms: i64,
    items: Vec<ExportItem<'a>>,
}

/// The export file: JSON with every item's content and hash, or text with a header per
/// item. Either way the content is byte for byte what was hashed.
pub fn export(incident: &str, by: &str, at_ms: i64, items: &[Item], json: bool) -> String {
    if json {
        let export = Export {
            incident,
            exported_by: by,
            exported_at_ms: at_ms,
            items: items
                .iter()
                .map(|item| ExportItem {
                    item,
                    content: &item.content,
                })
                .collect(),
        };
        return serde_json::to_string_pretty(&export).unwrap_or_default();
    }
    let mut out = format!(
        "Evidence for {incident}, exported by {by} at {} (ms since the epoch); {} items.\n\
         Each item's content follows its header up to the next header line; its SHA-256 is \
         that of those bytes.\n",
        at_ms,
        items.len()
    );
    for i in items {
        out.push_str(&format!(
            "\n===== {} | {} | {} bytes | sha256 {} | collected by {} at {}{} =====\n",
            i.name,
            i.kind.name(),
            i.bytes,
            i.sha256,
            i.collected_by,
            i.collected_at_ms,
            if i.truncated {
                " | cut at the bound"
            } else {
                ""
            }
        ));
        out.push_str(&i.content);
    }
    out
}

/// The export's file name.
pub fn file_name(incident: &str, json: bool) -> String {
    format!(
        "evidence-{}.{}",
        incident.to_ascii_lowercase(),
        if json { "json" } else { "txt" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, content: &str) -> Read {
        Read {
            name: name.into(),
            kind: Kind::Log,
            content: content.into(),
            truncated: false,
        }
    }

    #[test]
    fn the_hash_is_the_sha256_of_what_is_kept() {
        // The FIPS 180-2 example.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let c = Collection::keep(vec![read("log/a/app", "abc")], "U1", 7);
        assert_eq!(c.kept[0].sha256, sha256_hex(b"abc"));
        assert_eq!(
            (c.kept[0].bytes, c.kept[0].collected_by.as_str()),
            (3, "U1")
        );
    }

    #[test]
    fn a_nul_is_kept_as_a_replacement_character_and_hashed_so() {
        let c = Collection::keep(vec![read("log/a/app", "a\0b")], "U1", 0);
        assert_eq!(c.kept[0].content, "a\u{fffd}b");
        assert_eq!(c.kept[0].sha256, sha256_hex("a\u{fffd}b".as_bytes()));
    }

    #[test]
    fn an_item_past_its_bound_is_cut_on_a_character_and_marked() {
        let big = "é".repeat(MAX_ITEM_BYTES); // two bytes each
        let c = Collection::keep(vec![read("log/a/app", &big)], "U1", 0);
        let item = &c.kept[0];
        assert!(item.truncated);
        assert!(item.bytes <= MAX_ITEM_BYTES && item.bytes > MAX_ITEM_BYTES - 2);
        assert_eq!(item.sha256, sha256_hex(item.content.as_bytes()));
    }

    #[test]
    fn the_collection_bound_leaves_out_what_does_not_fit_and_says_so() {
        let chunk = "x".repeat(MAX_ITEM_BYTES);
        let reads: Vec<Read> = (0..20)
            .map(|n| read(&format!("log/p{n}/app"), &chunk))
            .collect();
        let c = Collection::keep(reads, "U1", 0);
        assert_eq!(c.kept.len(), MAX_COLLECTION_BYTES / MAX_ITEM_BYTES);
        assert_eq!(c.left_out.len(), 20 - c.kept.len());
        let crate::domain::view::Block::Section(text) = &render_collected("INC-3", &c).blocks[0]
        else {
            panic!("not a section");
        };
        assert!(
            text.contains("Not kept") && text.contains("log/p19/app"),
            "{text}"
        );
    }

    #[test]
    fn pod_specs_lose_literal_env_values_and_managed_fields_but_keep_references() {
        let pod = serde_json::json!({
            "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"containers": [{"name": "app", "env": [
                {"name": "DB_PASSWORD", "value": "hunter2"},
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "k"}}}
            ]}]}
        });
        let out = redact_pod(pod).to_string();
        assert!(
            !out.contains("hunter2") && !out.contains("managedFields"),
            "{out}"
        );
        assert!(
            out.contains("(redacted, 7 bytes)") && out.contains("secretKeyRef"),
            "{out}"
        );
    }

    #[test]
    fn exports_carry_the_content_that_was_hashed() {
        let c = Collection::keep(
            vec![read("log/a/app", "line one\n"), read("events", "[]")],
            "U1",
            5,
        );
        let json: serde_json::Value =
            serde_json::from_str(&export("INC-3", "U2", 9, &c.kept, true)).unwrap();
        for item in json["items"].as_array().unwrap() {
            let content = item["content"].as_str().unwrap();
            assert_eq!(
                item["sha256"].as_str().unwrap(),
                sha256_hex(content.as_bytes())
            );
        }
        assert_eq!(json["exported_by"], "U2");
        let text = export("INC-3", "U2", 9, &c.kept, false);
        assert!(
            text.contains("===== log/a/app | log | 9 bytes | sha256 "),
            "{text}"
        );
        assert!(text.contains("line one\n"));
        assert_eq!(file_name("INC-3", true), "evidence-inc-3.json");
    }

    #[test]
    fn listings_and_pages_escape_names_and_show_full_hashes() {
        let c = Collection::keep(vec![read("log/<!here>/app", "x")], "U1", 0);
        let page = page_text("<@U9>", "Suspected Security Breach <!channel>", &c.kept);
        assert!(
            !page.contains("<!channel>") && !page.contains("`log/<!here>"),
            "{page}"
        );
        assert!(page.contains(&c.kept[0].sha256));
        assert!(page.starts_with("🚨 *Security team* <@U9>"));
        assert!(render_list("INC-1", &[]).text.contains("No evidence"));
    }
}
