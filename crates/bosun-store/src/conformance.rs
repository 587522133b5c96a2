//! The conformance suite: every backend runs these checks.
