//! Resource quantities ("250m", "64Mi", "1e3"): parsing, comparison and canonical form as upstream.
