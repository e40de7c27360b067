//! Every key the configuration file accepts, read from the raw structures themselves, so
//! the example file and README's reference can be held to the code and cannot drift.
//!
//! A deserializer that answers every question serde's derive asks with a harmless value
//! and notes the path of each leaf it is asked for. Maps with free keys (roles, verbs,
//! severities) appear as `*`.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// The dotted paths of every leaf key, sorted.
pub(super) fn all() -> Vec<String> {
    let out = Rc::new(RefCell::new(Vec::new()));
    super::Raw::deserialize(Probe {
        path: String::new(),
        out: Rc::clone(&out),
    })
    .expect("the probe answers every question the raw structures ask");
    let mut keys = out.take();
    keys.sort();
    keys.dedup();
    keys
}

struct Probe {
    path: String,
    out: Rc<RefCell<Vec<String>>>,
}

impl Probe {
    fn leaf(&self) {
        self.out.borrow_mut().push(self.path.clone());
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_str("")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_bool(false)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_i64(0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_f64(0.0)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_seq(Empty)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Entries::new(self, &["*"]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Entries::new(self, fields))
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 char str string bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

struct Empty;

impl<'de> SeqAccess<'de> for Empty {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _: T,
    ) -> Result<Option<T::Value>, Error> {
        Ok(None)
    }
}

/// A map or struct's keys, each with a probe one level down as its value.
struct Entries {
    parent: Probe,
    keys: std::slice::Iter<'static, &'static str>,
    current: &'static str,
}

impl Entries {
    fn new(parent: Probe, keys: &'static [&'static str]) -> Self {
        Self {
            parent,
            keys: keys.iter(),
            current: "",
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(key) = self.keys.next() else {
            return Ok(None);
        };
        self.current = key;
        let key: StrDeserializer<'_, Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let path = if self.parent.path.is_empty() {
            self.current.to_owned()
        } else {
            format!("{}.{}", self.parent.path, self.current)
        };
        seed.deserialize(Probe {
            path,
            out: Rc::clone(&self.parent.out),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const EXAMPLE: &str = include_str!("../../config/odorbot.example.yaml");
    const README: &str = include_str!("../../README.md");

    /// The example with its commented-out keys (`# key: value`) taken in: those are the
    /// keys without a default, shown with an example value.
    fn example_with_every_key() -> String {
        let commented = regex::Regex::new(r"^(\s*)# ?(\s*[a-z_]+:(\s|$))").unwrap();
        EXAMPLE
            .lines()
            .map(|l| commented.replace(l, "$1$2").into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn leaves(prefix: &str, v: &serde_yaml_ng::Value, out: &mut Vec<String>) {
        match v {
            serde_yaml_ng::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = k.as_str().expect("keys are strings");
                    let path = if prefix.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    /// Whether `path` is `key` with each `*` standing for one segment.
    fn matches(key: &str, path: &str) -> bool {
        let (k, p): (Vec<_>, Vec<_>) = (key.split('.').collect(), path.split('.').collect());
        k.len() == p.len() && k.iter().zip(&p).all(|(k, p)| *k == "*" || k == p)
    }

    #[test]
    fn the_probe_finds_nested_and_free_keys() {
        let keys = all();
        for key in [
            "slack.api_url",
            "approvals.actions.*.approve",
            "approvals.roles.*",
            "incidents.escalation.*.escalate_unresolved_business_days",
            "runbook.path",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
    }

    #[test]
    fn the_example_lists_every_key_and_no_other() {
        let text = example_with_every_key();
        // Every key it shows is one the loader takes (unknown keys are refused).
        let _: super::super::Raw = serde_yaml_ng::from_str(&text).unwrap();
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut shown = Vec::new();
        leaves("", &value, &mut shown);
        let keys = all();
        let missing: Vec<_> = keys
            .iter()
            .filter(|k| !shown.iter().any(|p| matches(k, p)))
            .collect();
        assert!(
            missing.is_empty(),
            "keys missing from the example: {missing:?}"
        );
        let unknown: Vec<_> = shown
            .iter()
            .filter(|p| !keys.iter().any(|k| matches(k, p)))
            .collect();
        assert!(unknown.is_empty(), "not keys: {unknown:?}");
    }

    #[test]
    fn the_values_the_example_sets_are_the_defaults() {
        let env = |name: &str| match name {
            "SLACK_APP_TOKEN" => Some("xapp-1-abc".to_owned()),
            "SLACK_BOT_TOKEN" => Some("xoxb-123-abc".to_owned()),
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.yaml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let example = super::super::Config::load(Some(&path), &env).unwrap();
        let defaults = super::super::Config::load(None, &env).unwrap();
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
    }

    /// README's reference names every key in full (`approvals.actions.<verb>.approve`).
    #[test]
    fn the_readme_names_every_key() {
        let span = regex::Regex::new(r"`([a-z_]+(\.[a-z0-9_<>]+)+)`").unwrap();
        let free = regex::Regex::new(r"<[a-z_]+>").unwrap();
        let named: BTreeSet<String> = span
            .captures_iter(README)
            .map(|c| free.replace_all(&c[1], "*").into_owned())
            .collect();
        let missing: Vec<_> = all().into_iter().filter(|k| !named.contains(k)).collect();
        assert!(missing.is_empty(), "keys README does not name: {missing:?}");
    }
}
