//! The runbook catalog: OdorDiff-2's operations runbook as data.
//!
//! Steps compose a closed set of typed [`actions`]; the catalog never holds a shell
//! command. [`raw`] is the catalog file as written.

pub mod actions;
pub mod raw;
pub mod values;
