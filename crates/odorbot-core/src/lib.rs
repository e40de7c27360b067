//! odorbot's pure core. Nothing here performs I/O beyond reading a catalog file it is
//! given: no async runtime, no network, no database. The odorbot crate's adapters convert at
//! the boundary and call into it.
//!
//! - [`domain`]: ids and value types, the `/odor` command language, approvals, incidents,
//!   escalation, status updates and the message model.
//! - [`runbook`]: the runbook catalog as typed data and its compiler.

pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod runbook;
