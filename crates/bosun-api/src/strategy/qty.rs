//! The quantity operations the strategies need (parse, compare, sum, sign, display), kept in
//! one place over [`crate::quantity`] so the callers stay independent of its API.

use std::cmp::Ordering;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::quantity::{Format, Quantity, MILLI};

/// Upstream's message for a string that is not a quantity.
pub(crate) const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity.
#[derive(Clone, Debug)]
pub(crate) struct Qty(Quantity);

impl Qty {
    pub(crate) fn zero() -> Qty {
        Qty(Quantity::zero(Format::DecimalSI))
    }

    pub(crate) fn from_int(v: i64) -> Qty {
        Qty(Quantity::new(v, Format::DecimalSI))
    }

    /// -1, 0 or 1.
    pub(crate) fn sign(&self) -> i32 {
        self.0.sign()
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Upstream's integer check: `MilliValue() % 1000 == 0`.
    pub(crate) fn is_integer(&self) -> bool {
        self.0.milli_value() % 1000 == 0
    }

    pub(crate) fn cmp_to(&self, other: &Qty) -> Ordering {
        self.0.cmp(&other.0)
    }

    pub(crate) fn add(&self, other: &Qty) -> Qty {
        Qty(self.0.add(&other.0))
    }
}

impl PartialEq for Qty {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_to(other) == Ordering::Equal
    }
}

/// Parses a quantity string (`250m`, `64Mi`, `1e3`, `1.5Gi`), surrounding whitespace allowed
/// as upstream's JSON decoding allows it.
pub(crate) fn parse(s: &str) -> Option<Qty> {
    Quantity::parse_trimmed(s).ok().map(Qty)
}

/// How a quantity is shown in messages: upstream prints `Quantity.String()`, the canonical
/// form (`0.5` shows as `500m`); what does not parse is shown as written.
pub(crate) fn display(s: &str) -> String {
    match Quantity::parse_trimmed(s) {
        Ok(q) => q.to_string(),
        Err(_) => s.to_string(),
    }
}

/// Upstream's `SetDefaults_ResourceList`: values are rounded up to milli precision and
/// written in canonical form. Unparsable values are left for validation to report.
pub(crate) fn round_resource_list(list: &mut std::collections::BTreeMap<String, ApiQuantity>) {
    for q in list.values_mut() {
        if let Ok(parsed) = Quantity::parse_trimmed(&q.0) {
            let (rounded, exact) = parsed.round_up(MILLI);
            if !exact {
                q.0 = rounded.canonical_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Qty {
        parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_and_compares() {
        assert_eq!(q("250m").cmp_to(&q("500m")), Ordering::Less);
        assert_eq!(q("0.5").cmp_to(&q("500m")), Ordering::Equal);
        assert_eq!(q("64Mi").cmp_to(&q("128Mi")), Ordering::Less);
        assert_eq!(q("1Gi").cmp_to(&q("1024Mi")), Ordering::Equal);
        assert_eq!(q("1e3").cmp_to(&q("1k")), Ordering::Equal);
        assert_eq!(q("1.5Gi").cmp_to(&q("1536Mi")), Ordering::Equal);
        assert_eq!(q("-1").sign(), -1);
        assert!(q("0").is_zero());
        assert!(q("2").is_integer());
        assert!(!q("500m").is_integer());
        assert_eq!(q("100m").add(&q("0.9")), q("1"));
        assert_eq!(Qty::from_int(1), q("1000m"));
        assert!(Qty::zero().is_zero());
    }

    #[test]
    fn rejects_garbage_and_displays_canonically() {
        for bad in ["", "abc", "1.2.3", "1Xi", "--1", "1 Gi"] {
            assert!(parse(bad).is_none(), "{bad} should not parse");
        }
        assert_eq!(display("0.5"), "500m");
        assert_eq!(display("500m"), "500m");
        assert_eq!(display("junk"), "junk");
    }

    #[test]
    fn rounds_to_milli() {
        let mut list = std::collections::BTreeMap::from([
            ("cpu".to_string(), ApiQuantity("0.0001".into())),
            ("memory".to_string(), ApiQuantity("64Mi".into())),
        ]);
        round_resource_list(&mut list);
        assert_eq!(list["cpu"].0, "1m");
        assert_eq!(list["memory"].0, "64Mi");
    }
}
