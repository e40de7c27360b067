//! Why an action could not be carried out, typed from the adapters up to the one place
//! that turns it into a reply ([`Failure::reply`]) and counts it by kind.

use thiserror::Error;

use crate::cluster::ClusterError;
use crate::domain::command::VerbError;
use crate::domain::view::{Message, escape};
use crate::runbook::stored::StoredActionError;

#[derive(Debug, Error)]
pub enum Failure {
    /// odorbot runs without Kubernetes credentials.
    #[error("Kubernetes is not available: {0}")]
    NoCluster(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A probe (PostgreSQL, Redis, Prometheus, HTTP) could not answer.
    #[error("{0}")]
    Probe(String),
    /// A value the action's types refuse.
    #[error("{0}")]
    Invalid(String),
    /// An object the runbook does not list.
    #[error("{0}")]
    NotListed(String),
    /// A request reached execution without a value its approval must bind.
    #[error("{0}; nothing was done")]
    Unbound(&'static str),
    #[error(transparent)]
    Stored(#[from] StoredActionError),
}

impl From<VerbError> for Failure {
    fn from(e: VerbError) -> Self {
        match e {
            VerbError::Invalid(why) => Self::Invalid(why),
            VerbError::NotListed(why) => Self::NotListed(why),
        }
    }
}

impl Failure {
    /// The metric label: a small fixed set.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoCluster(_) => "no_cluster",
            Self::Cluster(_) => "cluster",
            Self::Probe(_) => "probe",
            Self::Invalid(_) => "invalid",
            Self::NotListed(_) => "not_listed",
            Self::Unbound(_) => "unbound",
            Self::Stored(_) => "stored",
        }
    }

    pub const KINDS: [&'static str; 7] = [
        "no_cluster",
        "cluster",
        "probe",
        "invalid",
        "not_listed",
        "unbound",
        "stored",
    ];

    /// The reply for a person: what could not be done, and why, in one wording.
    pub fn reply(&self, what: &str) -> Message {
        Message::text(format!(
            "❔ *{}*: {}",
            escape(what),
            escape(&self.to_string())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_and_replies_escape_the_reason() {
        let all = [
            Failure::NoCluster("no credentials".into()),
            Failure::Probe("timed out after 2s".into()),
            Failure::Invalid("\"a b\" is not a tag".into()),
            Failure::NotListed("\"x\" is not one of the runbook's certificates".into()),
            Failure::Unbound("the clean-up Job has no name"),
            Failure::Stored(StoredActionError::Json("eof".into())),
        ];
        for f in &all {
            assert!(Failure::KINDS.contains(&f.kind()), "{f:?}");
        }
        let reply = Failure::Probe("<!channel> down".into()).reply("Cache");
        assert_eq!(
            reply.blocks,
            [crate::domain::view::Block::Section(
                "❔ *Cache*: &lt;!channel&gt; down".into()
            )]
        );
        assert_eq!(
            Failure::Unbound("no sessions were bound").to_string(),
            "no sessions were bound; nothing was done"
        );
    }
}
