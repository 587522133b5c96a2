//! The quantity arithmetic the strategies need (parse, compare, sum, sign), kept in one place
//! so that it can be pointed at `crate::quantity` without touching the callers.

use std::cmp::Ordering;

/// Upstream's message for a string that is not a quantity.
pub(crate) const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// An exact decimal quantity: `num × 10^exp`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Qty {
    num: i128,
    exp: i32,
}

impl Qty {
    pub(crate) const ZERO: Qty = Qty { num: 0, exp: 0 };

    pub(crate) fn from_int(v: i64) -> Qty {
        Qty {
            num: i128::from(v),
            exp: 0,
        }
        .normalized()
    }

    fn normalized(mut self) -> Qty {
        if self.num == 0 {
            return Qty::ZERO;
        }
        while self.num % 10 == 0 {
            self.num /= 10;
            self.exp += 1;
        }
        self
    }

    /// -1, 0 or 1.
    pub(crate) fn sign(&self) -> i32 {
        self.num.signum() as i32
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.num == 0
    }

    /// Whether the value is a whole number (upstream: `MilliValue() % 1000 == 0`).
    pub(crate) fn is_integer(&self) -> bool {
        self.num == 0 || self.exp >= 0
    }

    fn approx(&self) -> f64 {
        (self.num as f64) * 10f64.powi(self.exp)
    }

    /// `(a, b)` brought to a common exponent, if that fits.
    fn aligned(&self, other: &Qty) -> Option<(i128, i128, i32)> {
        let exp = self.exp.min(other.exp);
        let scale = |q: &Qty| -> Option<i128> {
            let shift = u32::try_from(q.exp - exp).ok()?;
            q.num.checked_mul(10i128.checked_pow(shift)?)
        };
        Some((scale(self)?, scale(other)?, exp))
    }

    pub(crate) fn cmp_to(&self, other: &Qty) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self
                .approx()
                .partial_cmp(&other.approx())
                .unwrap_or(Ordering::Equal),
        }
    }

    pub(crate) fn add(&self, other: &Qty) -> Qty {
        match self
            .aligned(other)
            .and_then(|(a, b, exp)| a.checked_add(b).map(|n| Qty { num: n, exp }))
        {
            Some(q) => q.normalized(),
            // Saturate rather than fail: sums only feed comparisons.
            None => {
                if self.cmp_to(other) == Ordering::Greater {
                    *self
                } else {
                    *other
                }
            }
        }
    }
}

impl PartialEq for Qty {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_to(other) == Ordering::Equal
    }
}

/// Parses a quantity string (`250m`, `64Mi`, `1e3`, `1.5Gi`).
pub(crate) fn parse(s: &str) -> Option<Qty> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(split);
    if number.is_empty()
        || number.matches('.').count() > 1
        || !number.bytes().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mut num: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut exp = -(i32::try_from(frac_part.len()).ok()?);
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            num = num.checked_mul(1024i128.checked_pow(power)?)?;
        }
        "n" => exp -= 9,
        "u" => exp -= 6,
        "m" => exp -= 3,
        "k" => exp += 3,
        "M" => exp += 6,
        "G" => exp += 9,
        "T" => exp += 12,
        "P" => exp += 15,
        "E" => exp += 18,
        other => {
            let e = other.strip_prefix(['e', 'E'])?;
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let v: i32 = e.parse().ok()?;
            exp = exp.checked_add(v)?;
        }
    }
    if negative {
        num = -num;
    }
    Some(Qty { num, exp }.normalized())
}

/// How a quantity is shown in messages (upstream prints `Quantity.String()`).
pub(crate) fn display(s: &str) -> String {
    s.trim().to_string()
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
        assert_eq!(q("1E").cmp_to(&q("1e18")), Ordering::Equal);
        assert_eq!(q("1.5Gi").cmp_to(&q("1536Mi")), Ordering::Equal);
        assert_eq!(q("-1").sign(), -1);
        assert!(q("0").is_zero());
        assert!(q("2").is_integer());
        assert!(!q("500m").is_integer());
        assert_eq!(q("100m").add(&q("0.9")), q("1"));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "1Xi", "m", "1e", "--1", "1 Gi"] {
            assert!(parse(bad).is_none(), "{bad} should not parse");
        }
    }
}
