//! Documents: sources → pages → regions → engine → assembly → writers.
//!
//! Today: a projection-profile line finder for single-column pages ([`lines`]).

pub mod lines;
