//! Identifiers that cross the boundary: parsed once, trusted afterwards.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why an identifier was rejected; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("must use only lowercase letters a-z, digits 0-9, '-' and '.'")]
    BadCharacter,
    #[error("must start and end with a letter or digit (each dot-separated part too)")]
    BadEdge,
    #[error("is not a Slack {kind} id (expected {prefixes} followed by letters and digits)")]
    NotSlackId {
        kind: &'static str,
        prefixes: &'static str,
    },
}

/// A Kubernetes object name in the RFC 1123 subdomain form the API server enforces
/// for Deployments, Pods, ConfigMaps and the like.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct K8sName(String);

impl K8sName {
    pub const MAX_LEN: usize = 253;
    const MAX_LABEL_LEN: usize = 63;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for K8sName {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(IdError::TooLong {
                len,
                max: Self::MAX_LEN,
            });
        }
        for label in s.split('.') {
            if label.len() > Self::MAX_LABEL_LEN {
                return Err(IdError::TooLong {
                    len: label.len(),
                    max: Self::MAX_LABEL_LEN,
                });
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(IdError::BadCharacter);
            }
            let edge_ok = |b: Option<u8>| b.is_some_and(|b| b != b'-');
            if !edge_ok(label.bytes().next()) || !edge_ok(label.bytes().last()) {
                return Err(IdError::BadEdge);
            }
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for K8sName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a Slack id newtype: an uppercase prefix letter from a fixed set, then
/// uppercase letters and digits. Slack's ids are short; 32 leaves ample room.
macro_rules! slack_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefixes:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let well_formed = (2..=32).contains(&s.len())
                    && s.starts_with(|c: char| $prefixes.contains(c))
                    && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                if well_formed {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::NotSlackId { kind: $kind, prefixes: $prefixes })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slack_id!(
    /// A Slack user (`U…`, or `W…` for Enterprise Grid users).
    UserId, "user", "UW"
);
slack_id!(
    /// A Slack conversation: public (`C…`), private (`G…`) or direct (`D…`).
    ChannelId, "channel", "CGD"
);
slack_id!(
    /// A Slack user group (`S…`), mentioned as `<!subteam^S…>`.
    UserGroupId, "user group", "S"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k8s_names_follow_rfc1123_subdomains() {
        for ok in ["odordiff-api", "a", "x1.y2", "postgres-data-postgres-0"] {
            assert!(ok.parse::<K8sName>().is_ok(), "{ok}");
        }
        let cases: &[(&str, IdError)] = &[
            ("", IdError::Empty),
            ("Odordiff", IdError::BadCharacter),
            ("odordiff_api", IdError::BadCharacter),
            ("-api", IdError::BadEdge),
            ("api-", IdError::BadEdge),
            ("a..b", IdError::BadEdge),
            ("ödordiff", IdError::BadCharacter),
            ("api;rm", IdError::BadCharacter),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<K8sName>().unwrap_err(), *want, "{input:?}");
        }
        let long_label = "a".repeat(64);
        assert!(matches!(
            long_label.parse::<K8sName>(),
            Err(IdError::TooLong { max: 63, .. })
        ));
        let long = ["a"; 130].join(".");
        assert!(matches!(
            long.parse::<K8sName>(),
            Err(IdError::TooLong { max: 253, .. })
        ));
    }

    #[test]
    fn slack_ids_need_their_prefix() {
        assert!("U024BE7LH".parse::<UserId>().is_ok());
        assert!("W111".parse::<UserId>().is_ok());
        assert!("C111".parse::<UserId>().is_err());
        assert!("C2147483705".parse::<ChannelId>().is_ok());
        assert!("c111".parse::<ChannelId>().is_err());
        assert!("S0614TZR7".parse::<UserGroupId>().is_ok());
        assert!("S".parse::<UserGroupId>().is_err());
        assert!("U<!here>".parse::<UserId>().is_err());
    }
}
