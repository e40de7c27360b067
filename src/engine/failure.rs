//! Why an action could not be carried out, typed from the adapters up to the one place
//! that turns it into a reply ([`Failure::reply`]) and counts it by kind.

use thiserror::Error;

use crate::cluster::ClusterError;
use crate::domain::command::VerbError;
use crate::domain::probe::ProbeError;
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
    #[error(transparent)]
    Probe(#[from] ProbeError),
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
    /// The metric label: a small fixed set, every member of which [`Failure::kinds`] lists.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoCluster(_) => "no_cluster",
            Self::Cluster(_) => "cluster",
            Self::Probe(e) => e.kind(),
            Self::Invalid(_) => "invalid",
            Self::NotListed(_) => "not_listed",
            Self::Unbound(_) => "unbound",
            Self::Stored(_) => "stored",
        }
    }

    /// One value of every variant (and of every probe cause); a test checks it is
    /// exhaustive, so the labels below cannot drift from [`Failure::kind`].
    pub fn samples() -> Vec<Failure> {
        let mut all = vec![
            Failure::NoCluster("no credentials".into()),
            Failure::Cluster(ClusterError::InvalidInput("x".into())),
            Failure::Invalid("\"a b\" is not a tag".into()),
            Failure::NotListed("\"x\" is not one of the runbook's certificates".into()),
            Failure::Unbound("the clean-up Job has no name"),
            Failure::Stored(StoredActionError::Json("eof".into())),
        ];
        all.extend(ProbeError::samples().into_iter().map(Failure::Probe));
        all
    }

    /// Every metric label [`Failure::kind`] gives, each once, for counters that show at zero
    /// from the first scrape.
    pub fn kinds() -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = Vec::new();
        for kind in Self::samples().iter().map(Self::kind) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }

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

    /// Adding a variant breaks this match; the samples then have to follow.
    fn index(f: &Failure) -> usize {
        match f {
            Failure::NoCluster(_) => 0,
            Failure::Cluster(_) => 1,
            Failure::Probe(_) => 2,
            Failure::Invalid(_) => 3,
            Failure::NotListed(_) => 4,
            Failure::Unbound(_) => 5,
            Failure::Stored(_) => 6,
        }
    }

    #[test]
    fn the_samples_cover_every_variant_and_the_kinds_are_bounded() {
        let samples = Failure::samples();
        let mut seen: Vec<usize> = samples.iter().map(index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        let kinds = Failure::kinds();
        for f in &samples {
            assert!(kinds.contains(&f.kind()), "{f:?}");
        }
        // Every probe cause has its own label; a fallback counts as the scrape that failed.
        assert_eq!(
            kinds.len(),
            6 + ProbeError::samples().len() - 1,
            "{kinds:?}"
        );
        assert!(kinds.iter().all(|k| k.len() <= 24 && k.is_ascii()));
    }

    #[test]
    fn replies_name_the_cause_and_escape_it() {
        let reply = Failure::Probe(ProbeError::Server {
            server: "Redis",
            message: "<!channel> down".into(),
        })
        .reply("Cache");
        assert_eq!(
            reply.blocks,
            [crate::domain::view::Block::Section(
                "❔ *Cache*: Redis: &lt;!channel&gt; down".into()
            )]
        );
        let timeout = Failure::from(
            crate::domain::probe::Limit::new(std::time::Duration::from_secs(2), "probes.timeout")
                .expired(),
        );
        assert_eq!(timeout.kind(), "probe_timeout");
        assert_eq!(timeout.to_string(), "no answer within 2s (probes.timeout)");
        assert_eq!(
            Failure::Unbound("no sessions were bound").to_string(),
            "no sessions were bound; nothing was done"
        );
    }
}
