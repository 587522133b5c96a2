//! Resource quantities ("250m", "64Mi", "1e3"): parsing, comparison and canonical form as upstream.
//!
//! A port of upstream `k8s.io/apimachinery/pkg/api/resource` (`quantity.go`, `amount.go`,
//! `suffix.go`). A value is an exact decimal `mantissa × 10^exponent` with an `i128` mantissa
//! (up to 38 significant digits) — never a float. Parsing rounds below-nano values away from
//! zero and caps binary (`Ki`..`Ei`) values at 2^63-1, as upstream does; the string form is
//! upstream's `String()`: the input itself when upstream caches it as already canonical,
//! otherwise `CanonicalizeBytes`.
//!
//! Where upstream would fall back to arbitrary precision (more than 38 significant digits, or
//! adding numbers whose exponents are far apart) the result is rounded away from zero instead.
//! No Kubernetes resource value comes near that range.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

/// The regular expression upstream quotes in its format error.
pub const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Parse errors, with upstream's texts (they reach users in decode errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity is written back: the family of its suffix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M`, `250m` (powers of 1000)
    #[default]
    DecimalSI,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalExponent => "DecimalExponent",
            Format::BinarySI => "BinarySI",
            Format::DecimalSI => "DecimalSI",
        }
    }
}

/// Power-of-ten scales for [`Quantity::scaled_value`] and friends (upstream `resource.Scale`).
pub const NANO: i32 = -9;
pub const MICRO: i32 = -6;
pub const MILLI: i32 = -3;
pub const KILO: i32 = 3;
pub const MEGA: i32 = 6;
pub const GIGA: i32 = 9;
pub const TERA: i32 = 12;
pub const PETA: i32 = 15;
pub const EXA: i32 = 18;

/// Mantissas stay below 10^38 so that sums and alignments fit an `i128`.
const MAX_DIGITS: usize = 38;

const fn pow10_table() -> [i128; 39] {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
}

const POW10: [i128; 39] = pow10_table();

fn pow10(k: u64) -> Option<i128> {
    POW10.get(usize::try_from(k).ok()?).copied()
}

fn digit_count(m: u128) -> i64 {
    let mut n = 1;
    let mut v = m / 10;
    while v > 0 {
        n += 1;
        v /= 10;
    }
    n
}

/// `m / 10^k` rounded away from zero, and whether it was exact.
fn div_pow10_away(m: i128, k: u64) -> (i128, bool) {
    if m == 0 {
        return (0, true);
    }
    match pow10(k) {
        Some(p) => {
            let q = m / p;
            let r = m % p;
            if r == 0 {
                (q, true)
            } else {
                (q + m.signum(), false)
            }
        }
        // |m| < 10^38 <= 10^k: only the rounding unit is left.
        None => (m.signum(), false),
    }
}

/// `m × 10^(from - to)` for `from >= to`, or rounded away from zero for `from < to`.
fn rescale(m: i128, from: i64, to: i64) -> i128 {
    if from >= to {
        let k = (from - to) as u64;
        pow10(k).and_then(|p| m.checked_mul(p)).unwrap_or(if m < 0 {
            -i128::MAX
        } else {
            i128::MAX
        })
    } else {
        div_pow10_away(m, (to - from) as u64).0
    }
}

/// Compares `am × 10^ae` with `bm × 10^be` without overflowing on distant exponents.
fn cmp_parts(am: i128, ae: i64, bm: i128, be: i64) -> Ordering {
    let (sa, sb) = (am.signum(), bm.signum());
    if sa != sb {
        return sa.cmp(&sb);
    }
    if sa == 0 {
        return Ordering::Equal;
    }
    let (a, b) = (am.unsigned_abs(), bm.unsigned_abs());
    let (oa, ob) = (digit_count(a) + ae, digit_count(b) + be);
    let mag = if oa != ob {
        oa.cmp(&ob)
    } else if ae == be {
        a.cmp(&b)
    } else if ae > be {
        let scaled = POW10
            .get((ae - be) as usize)
            .and_then(|p| a.checked_mul(*p as u128));
        scaled.map_or(Ordering::Greater, |x| x.cmp(&b))
    } else {
        let scaled = POW10
            .get((be - ae) as usize)
            .and_then(|p| b.checked_mul(*p as u128));
        scaled.map_or(Ordering::Less, |x| a.cmp(&x))
    };
    if sa > 0 {
        mag
    } else {
        mag.reverse()
    }
}

/// Exact sum when both operands fit at the finer exponent; otherwise the finer operand is
/// rounded away from zero to the coarsest exponent that keeps the sum in range.
fn add_parts(am: i128, ae: i64, bm: i128, be: i64) -> (i128, i64) {
    if am == 0 {
        return (bm, be);
    }
    if bm == 0 {
        return (am, ae);
    }
    let limit = MAX_DIGITS as i64 - 1;
    let t = ae
        .min(be)
        .max(ae + digit_count(am.unsigned_abs()) - limit)
        .max(be + digit_count(bm.unsigned_abs()) - limit);
    (rescale(am, ae, t) + rescale(bm, be, t), t)
}

// --- exact decimal digit strings, for parsing without big integers ---

fn strip_leading_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

/// `d × k` for an ASCII digit string.
fn mul_digits(d: &[u8], k: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len() + 20);
    let mut carry: u128 = 0;
    for &c in d.iter().rev() {
        let v = u128::from(c - b'0') * u128::from(k) + carry;
        out.push(b'0' + (v % 10) as u8);
        carry = v / 10;
    }
    while carry > 0 {
        out.push(b'0' + (carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    out
}

/// Adds one to an ASCII digit string.
fn increment_digits(d: &mut Vec<u8>) {
    for c in d.iter_mut().rev() {
        if *c == b'9' {
            *c = b'0';
        } else {
            *c += 1;
            return;
        }
    }
    d.insert(0, b'1');
}

/// Drops the last `k` digits, rounding up if any dropped digit is non-zero.
fn ceil_drop_digits(d: &[u8], k: u64) -> Vec<u8> {
    let keep = usize::try_from(k).ok().and_then(|k| d.len().checked_sub(k));
    let (head, tail) = match keep {
        Some(n) => d.split_at(n),
        None => (&d[..0], d),
    };
    let mut out = head.to_vec();
    if tail.iter().any(|c| *c != b'0') {
        increment_digits(&mut out);
    }
    out
}

/// An exact digit string and exponent to a mantissa within range, rounding away from zero only
/// past 38 significant digits.
fn digits_to_parts(digits: &[u8], mut exp: i64, negative: bool) -> (i128, i64) {
    let mut d = strip_leading_zeros(digits).to_vec();
    if d.len() > MAX_DIGITS {
        let drop = d.len() - MAX_DIGITS;
        d = ceil_drop_digits(&d, drop as u64);
        exp += drop as i64;
    }
    let trailing = d.iter().rev().take_while(|c| **c == b'0').count();
    d.truncate(d.len() - trailing);
    exp += trailing as i64;
    if d.is_empty() {
        return (0, 0);
    }
    let mut m: i128 = 0;
    for c in &d {
        m = m * 10 + i128::from(c - b'0');
    }
    (if negative { -m } else { m }, exp)
}

fn binary_suffix(times: u32) -> Option<&'static str> {
    ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        .get(times as usize)
        .copied()
}

fn decimal_si_suffix(exp: i64) -> Option<&'static str> {
    Some(match exp {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    })
}

/// A resource quantity as upstream's `resource.Quantity`.
///
/// Equality, ordering and hashing are by value: `1000m == 1`.
#[derive(Clone, Debug, Default)]
pub struct Quantity {
    mantissa: i128,
    exponent: i64,
    format: Format,
    /// The input, when upstream keeps it as the string form (already canonical-looking).
    cached: Option<String>,
}

struct Scanned<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn slice(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or("")
}

/// Upstream `parseQuantityString`: sign, integer digits (leading zeros dropped, "0" if none),
/// fraction digits, suffix.
fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Scanned {
            positive,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = slice(s, start, pos);
    if pos >= end {
        return Ok(Scanned {
            positive,
            num,
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = slice(s, start, pos);
        if pos >= end {
            return Ok(Scanned {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Scanned {
        positive,
        num,
        denom,
        suffix: slice(s, suffix_start, end),
    })
}

/// Upstream's suffixer: `(base, exponent, format)`. Exponents beyond ±(2^31-1) are rejected.
fn interpret(suffix: &str) -> Option<(u32, i64, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            let e: i64 = rest.parse().ok()?;
            let max = i64::from(i32::MAX);
            (-max..=max)
                .contains(&e)
                .then_some((10, e, Format::DecimalExponent))
        }
    }
}

/// Whether upstream's int64 fast path takes the input and keeps it verbatim as the string form.
fn keeps_input(sc: &Scanned<'_>, base: u32, exponent: i64, format: Format) -> bool {
    let (num, denom) = (sc.num, sc.denom);
    match format {
        Format::DecimalExponent | Format::DecimalSI => {
            let precision = 18 - (num.len() + denom.len()) as i64;
            let scale = exponent - denom.len() as i64;
            if precision < 0 || scale < i64::from(NANO) {
                return false;
            }
            let shifted = format!("{num}{denom}");
            scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
        }
        Format::BinarySI => {
            if !denom.is_empty() || base != 2 {
                return false;
            }
            let precision = 15 - num.len() as i64 - exponent * 3 / 10 - 1;
            if precision < 0 {
                return false;
            }
            let Ok(value) = num.parse::<i64>() else {
                return false;
            };
            let fits = u32::try_from(exponent)
                .ok()
                .and_then(|e| 1i64.checked_shl(e))
                .and_then(|m| value.checked_mul(m));
            fits.is_some() && value & 0x07 != 0
        }
    }
}

impl Quantity {
    /// Upstream `ParseQuantity`. No surrounding whitespace is accepted (see [`Quantity::parse_trimmed`]).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                cached: Some("0".to_string()),
                ..Quantity::default()
            });
        }
        let sc = scan(s)?;
        let (base, exponent, mut format) = interpret(sc.suffix).ok_or(QuantityError::Suffix)?;
        let cached = keeps_input(&sc, base, exponent, format).then(|| s.to_string());

        let mut digits = Vec::with_capacity(sc.num.len() + sc.denom.len());
        digits.extend_from_slice(sc.num.as_bytes());
        digits.extend_from_slice(sc.denom.as_bytes());
        let mut exp = -(sc.denom.len() as i64);
        if base == 2 {
            // Exact: the decimal digits times 2^exponent, as a digit string.
            let mut shift = exponent;
            while shift > 0 {
                let step = shift.min(60);
                digits = mul_digits(&digits, 1u64 << step);
                shift -= step;
            }
        } else {
            exp += exponent;
        }
        // Round anything finer than a nano away from zero: asking for a little should get some.
        if exp < i64::from(NANO) {
            digits = ceil_drop_digits(&digits, (i64::from(NANO) - exp) as u64);
            exp = i64::from(NANO);
        }
        let (mut m, mut e) = digits_to_parts(&digits, exp, !sc.positive);
        if format == Format::BinarySI {
            let max = i128::from(i64::MAX);
            if cmp_parts(m.abs(), e, max, 0) == Ordering::Greater {
                m = if m < 0 { -max } else { max };
                e = 0;
            }
            if m != 0 && cmp_parts(m.abs(), e, 1, 0) == Ordering::Less {
                format = Format::DecimalSI;
            }
        }
        Ok(Quantity {
            mantissa: m,
            exponent: e,
            format,
            cached,
        })
    }

    /// Parses after trimming surrounding whitespace, as upstream's JSON decoding does.
    pub fn parse_trimmed(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s.trim())
    }

    /// Upstream `NewQuantity`.
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity {
            mantissa: i128::from(value),
            exponent: 0,
            format,
            cached: None,
        }
    }

    /// Upstream `NewMilliQuantity`: `value / 1000`.
    pub fn new_milli(value: i64, format: Format) -> Quantity {
        Quantity::new_scaled_format(value, MILLI, format)
    }

    /// Upstream `NewScaledQuantity`: `value × 10^scale`, DecimalSI.
    pub fn new_scaled(value: i64, scale: i32) -> Quantity {
        Quantity::new_scaled_format(value, scale, Format::DecimalSI)
    }

    fn new_scaled_format(value: i64, scale: i32, format: Format) -> Quantity {
        Quantity {
            mantissa: i128::from(value),
            exponent: i64::from(scale),
            format,
            cached: None,
        }
    }

    /// A zero in the given format.
    pub fn zero(format: Format) -> Quantity {
        Quantity::new(0, format)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Changes the format used for the string form.
    pub fn with_format(mut self, format: Format) -> Quantity {
        self.format = format;
        self.cached = None;
        self
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// Upstream `CmpInt64`.
    pub fn cmp_i64(&self, y: i64) -> Ordering {
        cmp_parts(self.mantissa, self.exponent, i128::from(y), 0)
    }

    fn with_value(&self, mantissa: i128, exponent: i64) -> Quantity {
        Quantity {
            mantissa,
            exponent,
            format: self.format,
            cached: None,
        }
    }

    /// Upstream `Add`: if `self` is zero the result takes `y`'s format.
    pub fn add(&self, y: &Quantity) -> Quantity {
        let (m, e) = add_parts(self.mantissa, self.exponent, y.mantissa, y.exponent);
        let format = if self.is_zero() {
            y.format
        } else {
            self.format
        };
        Quantity {
            mantissa: m,
            exponent: e,
            format,
            cached: None,
        }
    }

    /// Upstream `Sub`: if `self` is zero the result takes `y`'s format.
    pub fn sub(&self, y: &Quantity) -> Quantity {
        self.add(&y.neg())
    }

    /// Upstream `Neg`.
    pub fn neg(&self) -> Quantity {
        self.with_value(-self.mantissa, self.exponent)
    }

    /// Upstream `Mul` by an integer; exact unless the product needs more than 38 digits.
    pub fn mul_i64(&self, y: i64) -> Quantity {
        let y = i128::from(y);
        if let Some(p) = self
            .mantissa
            .checked_mul(y)
            .filter(|p| p.unsigned_abs() < POW10[MAX_DIGITS] as u128)
        {
            return self.with_value(p, self.exponent);
        }
        let excess = digit_count(self.mantissa.unsigned_abs()) + digit_count(y.unsigned_abs())
            - (MAX_DIGITS as i64 - 1);
        let (m, _) = div_pow10_away(self.mantissa, excess.max(0) as u64);
        self.with_value(m.saturating_mul(y), self.exponent + excess.max(0))
    }

    /// Upstream `ScaledValue`: `ceil(q / 10^scale)`, rounded away from zero. Where upstream
    /// silently overflows an int64 this saturates.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        if self.mantissa == 0 {
            return 0;
        }
        let delta = self.exponent - i64::from(scale);
        let v = if delta >= 0 {
            pow10(delta as u64).and_then(|p| self.mantissa.checked_mul(p))
        } else {
            Some(div_pow10_away(self.mantissa, delta.unsigned_abs()).0)
        };
        let saturated = if self.mantissa < 0 {
            i64::MIN
        } else {
            i64::MAX
        };
        v.and_then(|v| i64::try_from(v).ok()).unwrap_or(saturated)
    }

    /// Upstream `Value`: the integer value rounded away from zero (e.g. CPU `1500m` → 2).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// Upstream `MilliValue`: `ceil(q × 1000)` (e.g. CPU `0.5` → 500).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(MILLI)
    }

    /// Upstream `AsInt64`: the value when it is an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        if self.exponent < 0 && self.mantissa != 0 {
            let (v, exact) = div_pow10_away(self.mantissa, self.exponent.unsigned_abs());
            return if exact { i64::try_from(v).ok() } else { None };
        }
        let p = pow10(self.exponent.max(0) as u64)?;
        i64::try_from(self.mantissa.checked_mul(p)?).ok()
    }

    /// Upstream `RoundUp`: the value rounded away from zero to a multiple of `10^scale`, and
    /// whether that was exact.
    pub fn round_up(&self, scale: i32) -> (Quantity, bool) {
        let scale = i64::from(scale);
        if self.exponent >= scale {
            return (self.clone(), true);
        }
        let (m, exact) = div_pow10_away(self.mantissa, (scale - self.exponent) as u64);
        (self.with_value(m, scale), exact)
    }

    /// Upstream `AsApproximateFloat64`: for scoring and display, never for accounting.
    pub fn as_approximate_f64(&self) -> f64 {
        let e = i32::try_from(self.exponent).unwrap_or(if self.exponent < 0 {
            i32::MIN
        } else {
            i32::MAX
        });
        self.mantissa as f64 * 10f64.powi(e)
    }

    /// The string upstream writes for this value, ignoring a cached input form
    /// (upstream `CanonicalizeBytes`).
    pub fn canonical_string(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            if self.cmp_i64(-1024) == Ordering::Greater && self.cmp_i64(1024) == Ordering::Less {
                format = Format::DecimalSI;
            } else {
                let (rounded, exact) = self.round_up(0);
                if exact {
                    if let Some(s) = rounded.base1024_string() {
                        return s;
                    }
                }
                // Past `Ei` or not an integer: no binary suffix fits, write it as a decimal.
                format = Format::DecimalSI;
            }
        }
        self.decimal_string(format)
    }

    /// Mantissa with all factors of 10 in the exponent, then the exponent lowered to a multiple
    /// of 3; the suffix for that exponent, or `e<exp>` where DecimalSI has none.
    fn decimal_string(&self, format: Format) -> String {
        let mut digits = self.mantissa.unsigned_abs().to_string().into_bytes();
        let trailing = digits.iter().rev().take_while(|c| **c == b'0').count();
        digits.truncate(digits.len() - trailing);
        let mut exp = self.exponent + trailing as i64;
        let r = exp.rem_euclid(3);
        digits.extend(std::iter::repeat_n(b'0', r as usize));
        exp -= r;
        let suffix = match format {
            Format::DecimalSI | Format::BinarySI => decimal_si_suffix(exp)
                .map(str::to_string)
                .unwrap_or_else(|| format!("e{exp}")),
            Format::DecimalExponent if exp == 0 => String::new(),
            Format::DecimalExponent => format!("e{exp}"),
        };
        let sign = if self.mantissa < 0 { "-" } else { "" };
        format!("{sign}{}{suffix}", String::from_utf8_lossy(&digits))
    }

    /// For a non-negative exponent (an integer value): strip factors of 1024 into a binary suffix.
    fn base1024_string(&self) -> Option<String> {
        let a = self.mantissa.unsigned_abs();
        let e = u32::try_from(self.exponent).ok()?;
        // value = a × 2^e × 5^e; only the twos can make factors of 1024.
        let twos = a.trailing_zeros().checked_add(e)?;
        let times = twos / 10;
        let suffix = binary_suffix(times)?;
        let shift = 10 * times;
        let (odd_part, extra_twos) = if shift <= e {
            (a, e - shift)
        } else {
            (a >> (shift - e), 0)
        };
        let mut digits = odd_part.to_string().into_bytes();
        let mut t = extra_twos;
        while t > 0 {
            let step = t.min(60);
            digits = mul_digits(&digits, 1u64 << step);
            t -= step;
        }
        let mut f = e;
        while f > 0 {
            let step = f.min(27);
            digits = mul_digits(&digits, 5u64.pow(step));
            f -= step;
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        Some(format!(
            "{sign}{}{suffix}",
            String::from_utf8_lossy(strip_leading_zeros(&digits))
        ))
    }

    /// Converts from k8s-openapi's string form (whitespace trimmed, as upstream's JSON decoding).
    pub fn from_api(q: &ApiQuantity) -> Result<Quantity, QuantityError> {
        Quantity::parse_trimmed(&q.0)
    }

    /// Converts an optional k8s-openapi quantity.
    pub fn from_api_opt(q: Option<&ApiQuantity>) -> Result<Option<Quantity>, QuantityError> {
        q.map(Quantity::from_api).transpose()
    }

    /// The k8s-openapi form, with the string upstream would write.
    pub fn to_api(&self) -> ApiQuantity {
        ApiQuantity(self.to_string())
    }
}

/// What upstream stores for a quantity string: parse (whitespace trimmed) and write back.
/// The apiserver uses it to normalize every quantity field of an incoming object.
pub fn canonicalize(s: &str) -> Result<String, QuantityError> {
    Ok(Quantity::parse_trimmed(s)?.to_string())
}

/// [`canonicalize`] in place on a k8s-openapi quantity.
pub fn canonicalize_api(q: &mut ApiQuantity) -> Result<(), QuantityError> {
    q.0 = canonicalize(&q.0)?;
    Ok(())
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical_string()),
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl TryFrom<&ApiQuantity> for Quantity {
    type Error = QuantityError;
    fn try_from(q: &ApiQuantity) -> Result<Self, Self::Error> {
        Quantity::from_api(q)
    }
}

impl From<&Quantity> for ApiQuantity {
    fn from(q: &Quantity) -> Self {
        q.to_api()
    }
}

impl From<Quantity> for ApiQuantity {
    fn from(q: Quantity) -> Self {
        q.to_api()
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_parts(self.mantissa, self.exponent, other.mantissa, other.exponent)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the normalized value so that equal quantities hash alike.
        let (mut m, mut e) = (self.mantissa, self.exponent);
        if m == 0 {
            e = 0;
        }
        while m != 0 && m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        m.hash(state);
        e.hash(state);
    }
}

impl std::ops::Add for &Quantity {
    type Output = Quantity;
    fn add(self, rhs: &Quantity) -> Quantity {
        Quantity::add(self, rhs)
    }
}

impl std::ops::Sub for &Quantity {
    type Output = Quantity;
    fn sub(self, rhs: &Quantity) -> Quantity {
        Quantity::sub(self, rhs)
    }
}

impl std::ops::AddAssign<&Quantity> for Quantity {
    fn add_assign(&mut self, rhs: &Quantity) {
        *self = Quantity::add(self, rhs);
    }
}

impl std::ops::SubAssign<&Quantity> for Quantity {
    fn sub_assign(&mut self, rhs: &Quantity) {
        *self = Quantity::sub(self, rhs);
    }
}

impl std::ops::Neg for &Quantity {
    type Output = Quantity;
    fn neg(self) -> Quantity {
        Quantity::neg(self)
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc.add(&q))
    }
}

impl<'a> std::iter::Sum<&'a Quantity> for Quantity {
    fn sum<I: Iterator<Item = &'a Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc.add(q))
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts a string or a JSON number, trimming whitespace, as upstream's `UnmarshalJSON`.
impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string such as \"250m\" or \"64Mi\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse_trimmed(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's `decQuantity(i, exponent, format)`.
    fn dq(m: i128, e: i64, format: Format) -> Quantity {
        Quantity {
            mantissa: m,
            exponent: e,
            format,
            cached: None,
        }
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    use Format::{BinarySI as Bin, DecimalExponent as Exp, DecimalSI as Dec};

    // upstream TestQuantityParse (value and format; plus the `-` and `+` variants)
    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Quantity)> = vec![
            ("0", dq(0, 0, Dec)),
            ("0n", dq(0, 0, Dec)),
            ("0u", dq(0, 0, Dec)),
            ("0m", dq(0, 0, Dec)),
            ("0Ki", dq(0, 0, Bin)),
            ("0k", dq(0, 0, Dec)),
            ("0Mi", dq(0, 0, Bin)),
            ("0M", dq(0, 0, Dec)),
            ("0Gi", dq(0, 0, Bin)),
            ("0G", dq(0, 0, Dec)),
            ("0Ti", dq(0, 0, Bin)),
            ("0T", dq(0, 0, Dec)),
            ("1", dq(1, 0, Dec)),
            ("1Ki", dq(1024, 0, Bin)),
            ("8Ki", dq(8 * 1024, 0, Bin)),
            ("7Mi", dq(7 * 1024 * 1024, 0, Bin)),
            ("6Gi", dq(6 * 1024 * 1024 * 1024, 0, Bin)),
            ("5Ti", dq(5 * (1 << 40), 0, Bin)),
            ("4Pi", dq(4 * (1 << 50), 0, Bin)),
            ("3Ei", dq(3 * (1 << 60), 0, Bin)),
            ("10Ti", dq(10 * (1 << 40), 0, Bin)),
            ("100Ti", dq(100 * (1 << 40), 0, Bin)),
            ("5n", dq(5, -9, Dec)),
            ("4u", dq(4, -6, Dec)),
            ("3m", dq(3, -3, Dec)),
            ("9", dq(9, 0, Dec)),
            ("8k", dq(8, 3, Dec)),
            ("50k", dq(5, 4, Dec)),
            ("7M", dq(7, 6, Dec)),
            ("6G", dq(6, 9, Dec)),
            ("5T", dq(5, 12, Dec)),
            ("40T", dq(4, 13, Dec)),
            ("300T", dq(3, 14, Dec)),
            ("2P", dq(2, 15, Dec)),
            ("1E", dq(1, 18, Dec)),
            ("1E-3", dq(1, -3, Exp)),
            ("1e3", dq(1, 3, Exp)),
            ("1E6", dq(1, 6, Exp)),
            ("1e9", dq(1, 9, Exp)),
            ("1E12", dq(1, 12, Exp)),
            ("1e15", dq(1, 15, Exp)),
            ("1E18", dq(1, 18, Exp)),
            ("1e14", dq(1, 14, Exp)),
            ("1e13", dq(1, 13, Exp)),
            ("100.035k", dq(100035, 0, Dec)),
            ("0.001", dq(1, -3, Dec)),
            ("0.0005k", dq(5, -1, Dec)),
            ("0.005", dq(5, -3, Dec)),
            ("0.05", dq(5, -2, Dec)),
            ("0.5", dq(5, -1, Dec)),
            ("0.00050k", dq(5, -1, Dec)),
            ("0.00500", dq(5, -3, Dec)),
            ("0.05000", dq(5, -2, Dec)),
            ("0.50000", dq(5, -1, Dec)),
            ("0.5e0", dq(5, -1, Exp)),
            ("0.5e-1", dq(5, -2, Exp)),
            ("0.5e-2", dq(5, -3, Exp)),
            ("10.035M", dq(10035, 3, Dec)),
            ("1.2e3", dq(12, 2, Exp)),
            ("1.3E+6", dq(13, 5, Exp)),
            ("1.40e9", dq(14, 8, Exp)),
            ("1.53E12", dq(153, 10, Exp)),
            ("1.6e15", dq(16, 14, Exp)),
            ("1.7E18", dq(17, 17, Exp)),
            ("9.01", dq(901, -2, Dec)),
            ("8.1k", dq(81, 2, Dec)),
            ("7.123456M", dq(7123456, 0, Dec)),
            ("6.987654321G", dq(6987654321, 0, Dec)),
            ("5.444T", dq(5444, 9, Dec)),
            ("40.1T", dq(401, 11, Dec)),
            ("300.2T", dq(3002, 11, Dec)),
            ("2.5P", dq(25, 14, Dec)),
            ("1.01E", dq(101, 16, Dec)),
            // things that saturate or round
            ("3.001n", dq(4, -9, Dec)),
            ("1.1E-9", dq(2, -9, Exp)),
            ("0.0000000001", dq(1, -9, Dec)),
            ("0.0000000005", dq(1, -9, Dec)),
            ("0.00000000050", dq(1, -9, Dec)),
            ("0.5e-9", dq(1, -9, Exp)),
            ("0.9n", dq(1, -9, Dec)),
            ("0.00000012345", dq(124, -9, Dec)),
            ("0.00000012354", dq(124, -9, Dec)),
            ("9Ei", dq(i128::from(i64::MAX), 0, Bin)),
            ("9223372036854775807Ki", dq(i128::from(i64::MAX), 0, Bin)),
            ("12E", dq(12, 18, Dec)),
            // fractional binary
            ("100.035Ki", dq(10243584, -2, Bin)),
            ("0.5Mi", dq(512 * 1024, 0, Bin)),
            ("0.05Gi", dq(536870912, -1, Bin)),
            ("0.025Ti", dq(274877906944, -1, Bin)),
            // things written by trolls
            ("0.000000000001Ki", dq(2, -9, Dec)),
            (".001", dq(1, -3, Dec)),
            (".0001k", dq(100, -3, Dec)),
            ("1.", dq(1, 0, Dec)),
            ("1.G", dq(1, 9, Dec)),
        ];
        for (input, want) in &cases {
            let got = q(input);
            assert_eq!(
                got.cmp(want),
                Ordering::Equal,
                "{input}: got {got}, want {want}"
            );
            assert_eq!(got.format(), want.format(), "{input}");

            let neg = q(&format!("-{input}"));
            assert_eq!(neg.cmp(&want.neg()), Ordering::Equal, "-{input}: got {neg}");
            assert_eq!(neg.format(), want.format(), "-{input}");

            let plus = q(&format!("+{input}"));
            assert_eq!(plus.cmp(want), Ordering::Equal, "+{input}");
            assert_eq!(plus.format(), want.format(), "+{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let invalid = [
            "",
            "1.1.M",
            "1+1.0M",
            "0.1mi",
            "0.1am",
            "aoeu",
            ".5i",
            "1i",
            "-3.01i",
            "-3.01e-",
            "1e4294967297",
            " 1",
            "1 ",
            "1K",
            "1e",
            "1Ki1",
            "1 Gi",
            "1.5.5",
            "--1",
            "1e+",
            "٣",
        ];
        for s in invalid {
            assert!(Quantity::parse(s).is_err(), "{s:?} parsed unexpectedly");
        }
        assert_eq!(
            Quantity::parse("aoeu").expect_err("bad").to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            Quantity::parse("1i").expect_err("bad").to_string(),
            "unable to parse quantity's suffix"
        );
        assert_eq!(
            Quantity::parse("").expect_err("bad"),
            QuantityError::FormatWrong
        );
        assert_eq!(
            Quantity::parse("1K").expect_err("bad"),
            QuantityError::Suffix
        );
        assert_eq!(
            Quantity::parse("1e2147483647")
                .expect("max exponent")
                .to_string(),
            "10e2147483646"
        );
        assert!(Quantity::parse("1e2147483648").is_err());
        assert!(Quantity::parse("1e-2147483648").is_err());
        // the bare sign and bare dot parse as zero upstream
        for zero in ["-", "+", ".", "-.", "00", "-0", "0.0"] {
            assert!(q(zero).is_zero(), "{zero}");
            assert_eq!(q(zero).to_string(), "0", "{zero}");
        }
    }

    // upstream TestParseQuantityString
    #[test]
    fn scanner() {
        let cases = [
            ("0.025Ti", true, "0", "025", "Ti"),
            ("1.025Ti", true, "1", "025", "Ti"),
            ("-1.025Ti", false, "1", "025", "Ti"),
            (".", true, "0", "", ""),
            ("-.", false, "0", "", ""),
            ("1E-3", true, "1", "", "E-3"),
        ];
        for (input, positive, num, denom, suffix) in cases {
            let sc = scan(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (sc.positive, sc.num, sc.denom, sc.suffix),
                (positive, num, denom, suffix),
                "{input}"
            );
        }
    }

    // upstream TestQuantityString: canonical form, parse keeps it verbatim, alternates canonicalize
    #[test]
    fn string_table() {
        let cases: Vec<(Quantity, &str, &str)> = vec![
            (dq(1024 * 1024 * 1024, 0, Bin), "1Gi", "1024Mi"),
            (dq(300 * 1024 * 1024, 0, Bin), "300Mi", "307200Ki"),
            (dq(6 * 1024, 0, Bin), "6Ki", ""),
            (dq(1001 * 1024 * 1024 * 1024, 0, Bin), "1001Gi", "1025024Mi"),
            (dq(1024 * 1024 * 1024 * 1024, 0, Bin), "1Ti", "1024Gi"),
            (dq(5, 0, Bin), "5", "5000m"),
            (dq(500, -3, Bin), "500m", "0.5"),
            (dq(1, 9, Dec), "1G", "1000M"),
            (dq(1000, 6, Dec), "1G", "0.001T"),
            (dq(1000000, 3, Dec), "1G", ""),
            (dq(1000000000, 0, Dec), "1G", ""),
            (dq(1, -3, Dec), "1m", "1000u"),
            (dq(80, -3, Dec), "80m", ""),
            (dq(1080, -3, Dec), "1080m", "1.08"),
            (dq(108, -2, Dec), "1080m", "1080000000n"),
            (dq(10800, -4, Dec), "1080m", ""),
            (dq(300, 6, Dec), "300M", ""),
            (dq(1, 12, Dec), "1T", ""),
            (dq(1, 18, Dec), "1E", ""),
            (dq(1, 21, Dec), "1e21", "1000E"),
            (dq(5, 21, Dec), "5e21", "5000E"),
            (dq(1, 24, Dec), "1e24", "1000000E"),
            (dq(1, 70, Bin), "10e69", ""),
            (dq(2, 70, Bin), "20e69", ""),
            (dq(1, 72, Bin), "1e72", ""),
            (dq(1234567, 6, Dec), "1234567M", ""),
            (dq(1234567, -3, Bin), "1234567m", ""),
            (dq(3, 3, Dec), "3k", ""),
            (dq(1025, 0, Bin), "1025", ""),
            (dq(0, 0, Dec), "0", ""),
            (dq(0, 0, Bin), "0", ""),
            (dq(1, 9, Exp), "1e9", ".001e12"),
            (dq(1, -3, Exp), "1e-3", "0.001e0"),
            (dq(1, -9, Exp), "1e-9", "1000e-12"),
            (dq(80, -3, Exp), "80e-3", ""),
            (dq(300, 6, Exp), "300e6", ""),
            (dq(1, 12, Exp), "1e12", ""),
            (dq(1, 3, Exp), "1e3", ""),
            (dq(3, 3, Exp), "3e3", ""),
            (dq(3, 3, Dec), "3k", ""),
            (dq(0, 0, Exp), "0", "00"),
            (dq(1, -9, Dec), "1n", ""),
            (dq(80, -9, Dec), "80n", ""),
            (dq(1080, -9, Dec), "1080n", ""),
            (dq(108, -8, Dec), "1080n", ""),
            (dq(10800, -10, Dec), "1080n", ""),
            (dq(1, -6, Dec), "1u", ""),
            (dq(80, -6, Dec), "80u", ""),
            (dq(1080, -6, Dec), "1080u", ""),
        ];
        for (value, expect, alternate) in &cases {
            assert_eq!(value.to_string(), *expect, "{value:?}");
            let parsed = q(expect);
            assert_eq!(
                parsed.cached.as_deref(),
                Some(*expect),
                "{expect}: parse should keep the canonical string"
            );
            assert_eq!(parsed.cmp(value), Ordering::Equal, "{expect}");
            if !alternate.is_empty() {
                let alt = q(alternate);
                assert_eq!(
                    alt.cached, None,
                    "{alternate}: should not keep a non-canonical string"
                );
                assert_eq!(alt.to_string(), *expect, "{alternate}");
            }
            if !value.is_zero() {
                assert_eq!(value.neg().to_string(), format!("-{expect}"), "{value:?}");
            }
        }
        // below nano there is no DecimalSI suffix either
        assert_eq!(dq(1, -12, Dec).to_string(), "1e-12");
        assert_eq!(dq(1, -10, Dec).to_string(), "100e-12");
        // BinarySI integers without a binary factor
        assert_eq!(dq(2000, 0, Bin).to_string(), "2000");
        assert_eq!(dq(-2000, 0, Bin).to_string(), "-2000");
        // 2^70 has no binary suffix: the exact integer
        assert_eq!(q("1Ei").mul_i64(1024).to_string(), "1180591620717411303424");
        assert_eq!(q("1180591620717411303424"), q("1Ei").mul_i64(1024));
    }

    // upstream TestQuantityParseEmit and the examples from the brief
    #[test]
    fn parse_emit() {
        let cases = [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1e3", "1e3"),
            ("1000e0", "1e3"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("100M", "100M"),
            ("250m", "250m"),
            ("64Mi", "64Mi"),
            ("1.5G", "1500M"),
            ("100k", "100k"),
            ("2", "2"),
            ("-1", "-1"),
            ("1.5", "1500m"),
            ("0.1", "100m"),
        ];
        for (input, expect) in cases {
            assert_eq!(q(input).to_string(), expect, "{input}");
            if !input.starts_with('-') {
                assert_eq!(
                    q(&format!("-{input}")).to_string(),
                    format!("-{expect}"),
                    "-{input}"
                );
            }
        }
    }

    // upstream quantity_golden_test.go: what String() (and so JSON) carries
    #[test]
    fn serialization_golden() {
        let cases: Vec<(Quantity, &str, &str)> = vec![
            (Quantity::default(), "0", "0"),
            (q("1"), "1", "1"),
            (q("-1"), "-1", "-1"),
            (q("1Ki"), "1Ki", "1Ki"),
            (q("1024Mi"), "1Gi", "1Gi"),
            (q("1000M"), "1G", "1G"),
            (q("1e3"), "1e3", "1e3"),
            (q("0.1"), "100m", "100m"),
            (Quantity::new_milli(1441, Dec), "1441m", "1441m"),
            (q("0.000000000000001"), "1n", "1n"),
            // upstream keeps an input with 3n fraction digits verbatim (#138165)
            (q("1.441"), "1.441", "1441m"),
            (q("1.000001"), "1.000001", "1000001u"),
            (q("1.000000001"), "1.000000001", "1000000001n"),
            (q("1.5"), "1500m", "1500m"),
            (
                q("9223372036854775807"),
                "9223372036854775807",
                "9223372036854775807",
            ),
            (
                Quantity::new(i64::MIN, Dec),
                "-9223372036854775808",
                "-9223372036854775808",
            ),
            (
                q("9223372036854775808"),
                "9223372036854775808",
                "9223372036854775808",
            ),
            (
                q("18446744073709551616"),
                "18446744073709551616",
                "18446744073709551616",
            ),
            (
                Quantity::new_scaled(i64::MAX, 1),
                "92233720368547758070",
                "92233720368547758070",
            ),
            (q("1E"), "1E", "1E"),
            (q("100E"), "100E", "100E"),
            (q("1000E"), "1e21", "1e21"),
            (q("1e100"), "10e99", "10e99"),
            (Quantity::new_scaled(1, 21), "1e21", "1e21"),
            (q("8Ei"), "9223372036854775807", "9223372036854775807"),
            (q("-20Ei"), "-9223372036854775807", "-9223372036854775807"),
            (q("-9.5Gi"), "-9728Mi", "-9728Mi"),
            (
                q("-9.5000000001Gi"),
                "-10200547328107374183n",
                "-10200547328107374183n",
            ),
        ];
        for (value, string, canonical) in &cases {
            assert_eq!(value.to_string(), *string, "{value:?}");
            assert_eq!(value.canonical_string(), *canonical, "{value:?}");
            assert_eq!(
                serde_json::to_string(value).expect("serialize"),
                format!("\"{string}\"")
            );
            // adding zero drops the kept input form, as upstream's Add does
            assert_eq!(
                value.add(&Quantity::zero(Dec)).to_string(),
                *canonical,
                "{value:?} + 0"
            );
            // decode → encode is byte-stable
            let back: Quantity =
                serde_json::from_str(&format!("\"{string}\"")).expect("deserialize");
            assert_eq!(back.to_string(), *string);
            assert_eq!(&back, value);
        }
        // upstream keeps these inputs as written, too
        assert_eq!(q("+1").to_string(), "+1");
        assert_eq!(q("01").to_string(), "01");
        assert_eq!(q("1E-3").to_string(), "1E-3");
        assert_eq!(q("8Ki").to_string(), "8Ki");
    }

    #[test]
    fn json_forms() {
        for (json, expect) in [
            (r#"" 1""#, "1"),
            (r#""1 ""#, "1"),
            ("1", "1"),
            (" 1", "1"),
            ("10", "10"),
            ("-1", "-1"),
            ("1.5", "1500m"),
        ] {
            let v: Quantity = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(v.to_string(), expect, "{json}");
        }
        assert!(serde_json::from_str::<Quantity>(r#""1Q""#).is_err());
        let opt: Option<Quantity> = serde_json::from_str("null").expect("null");
        assert!(opt.is_none());
    }

    // upstream TestQuantityCmp and TestQuantityCmpInt64AndDec
    #[test]
    fn compare() {
        let cases = [
            ("0", "0", Ordering::Equal),
            ("100m", "50m", Ordering::Greater),
            ("50m", "100m", Ordering::Less),
            ("10000T", "100Gi", Ordering::Greater),
        ];
        for (x, y, want) in cases {
            assert_eq!(q(x).cmp(&q(y)), want, "{x} vs {y}");
        }
        let max = i128::from(i64::MAX);
        let min = i128::from(i64::MIN);
        let e18 = 1_000_000_000_000_000_000i128;
        let table = [
            (dq(901, -2, Dec), dq(901, -2, Dec), 0),
            (dq(90, -1, Dec), dq(901, -2, Dec), -1),
            (dq(901, -2, Dec), dq(900, -2, Dec), 1),
            (dq(0, 0, Dec), dq(0, 0, Dec), 0),
            (dq(0, 1, Dec), dq(0, -1, Dec), 0),
            (dq(0, -1, Dec), dq(0, 1, Dec), 0),
            (dq(800, -3, Dec), dq(1, 0, Dec), -1),
            (dq(800, -3, Dec), dq(79, -2, Dec), 1),
            (dq(max, 0, Dec), dq(1, -1, Dec), 1),
            (dq(max, 1, Dec), dq(1, 0, Dec), 1),
            (dq(max, 1, Dec), dq(1, 1, Dec), 1),
            (dq(max, 1, Dec), dq(0, 1, Dec), 1),
            (dq(max, -16, Dec), dq(1, 3, Dec), -1),
            (dq(min, 0, Dec), dq(0, 0, Dec), -1),
            (dq(min, -18, Dec), dq(-1, 0, Dec), -1),
            (dq(min, -19, Dec), dq(-1, 0, Dec), 1),
            (dq(e18, -17, Dec), dq(1, 1, Dec), 0),
            (dq(e18, -17, Dec), dq(-10, 0, Dec), 1),
            (dq(-e18, -17, Dec), dq(-10, 0, Dec), 0),
            (dq(e18, -17, Dec), dq(1, 0, Dec), 1),
            (dq(e18 + 1, -17, Dec), dq(1, 1, Dec), 1),
            (dq(e18 - 1, -17, Dec), dq(1, 1, Dec), -1),
            // exponents far apart
            (
                dq(1, 2_000_000_000, Dec),
                dq(i128::from(i64::MAX), -9, Dec),
                1,
            ),
            (dq(-1, 2_000_000_000, Dec), dq(1, -2_000_000_000, Dec), -1),
        ];
        for (a, b, want) in table {
            let want = want.cmp(&0);
            assert_eq!(a.cmp(&b), want, "{a:?} vs {b:?}");
            assert_eq!(b.cmp(&a), want.reverse(), "{b:?} vs {a:?}");
        }
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1.5").cmp_i64(1), Ordering::Greater);
    }

    // upstream TestQuantityRoundUp
    #[test]
    fn round_up() {
        let cases = [
            ("9.01", -3, dq(901, -2, Dec), true),
            ("9.01", -2, dq(901, -2, Dec), true),
            ("9.01", -1, dq(91, -1, Dec), false),
            ("9.01", 0, dq(10, 0, Dec), false),
            ("9.01", 1, dq(10, 0, Dec), false),
            ("9.01", 2, dq(100, 0, Dec), false),
            ("-9.01", -3, dq(-901, -2, Dec), true),
            ("-9.01", -2, dq(-901, -2, Dec), true),
            ("-9.01", -1, dq(-91, -1, Dec), false),
            ("-9.01", 0, dq(-10, 0, Dec), false),
            ("-9.01", 1, dq(-10, 0, Dec), false),
            ("-9.01", 2, dq(-100, 0, Dec), false),
        ];
        for (input, scale, want, exact) in cases {
            let (got, ok) = q(input).round_up(scale);
            assert_eq!(ok, exact, "{input} at {scale}");
            assert_eq!(got, want, "{input} at {scale}: {got}");
        }
    }

    // upstream TestNegativeValueRoundsAwayFromZero, TestScaledValue, TestNewSet, TestMilliNewSet
    #[test]
    fn integer_accessors() {
        let cases = [
            ("-.484785E-7466", -1, -1),
            (".484785E-7466", 1, 1),
            ("-.484785E-1", -1, -49),
            (".484785E-1", 1, 49),
            ("-0.0005", -1, -1),
            ("0.0005", 1, 1),
            ("-1500m", -2, -1500),
            ("1500m", 2, 1500),
            ("-9.5000000001Gi", -10200547329, -10200547328108),
            ("9.5000000001Gi", 10200547329, 10200547328108),
            ("-1", -1, -1000),
            ("1", 1, 1000),
            ("0", 0, 0),
            ("250m", 1, 250),
            ("0.5", 1, 500),
            ("64Mi", 64 << 20, (64 << 20) * 1000),
            ("1e3", 1000, 1_000_000),
        ];
        for (input, value, milli) in cases {
            assert_eq!(q(input).value(), value, "{input}.value()");
            assert_eq!(q(input).milli_value(), milli, "{input}.milli_value()");
        }
        let scaled = [
            (NANO, NANO, 1),
            (NANO, MICRO, 1),
            (NANO, MILLI, 1),
            (NANO, 0, 1),
            (MICRO, NANO, 1000),
            (MICRO, MICRO, 1),
            (MICRO, MILLI, 1),
            (MICRO, 0, 1),
            (MILLI, NANO, 1_000_000),
            (MILLI, MICRO, 1000),
            (MILLI, MILLI, 1),
            (MILLI, 0, 1),
            (0, NANO, 1_000_000_000),
            (0, MICRO, 1_000_000),
            (0, MILLI, 1000),
            (0, 0, 1),
            (2, -2, 10_000),
        ];
        for (from, to, want) in scaled {
            assert_eq!(
                Quantity::new_scaled(1, from).scaled_value(to),
                want,
                "{from} -> {to}"
            );
        }
        // saturates where upstream overflows
        assert_eq!(q("1e30").value(), i64::MAX);
        assert_eq!(q("-1e30").value(), i64::MIN);
        assert_eq!(q("1e2147483647").milli_value(), i64::MAX);

        for (v, f, want) in [
            (1, Dec, "1"),
            (1000, Dec, "1k"),
            (1234000, Dec, "1234k"),
            (1024, Bin, "1Ki"),
            (1024 * 1024, Bin, "1Mi"),
        ] {
            let n = Quantity::new(v, f);
            assert_eq!(n.to_string(), want);
            assert_eq!(q(want).value(), v);
        }
        assert_eq!(Quantity::new(1_000_000, Exp).to_string(), "1e6");
        for (v, f, want) in [
            (1, Dec, "1m"),
            (1000, Dec, "1"),
            (1234000, Dec, "1234"),
            (1024, Bin, "1024m"),
            (1024 * 1024, Bin, "1048576m"),
        ] {
            assert_eq!(Quantity::new_milli(v, f).to_string(), want);
        }
        assert_eq!(Quantity::new_milli(1_000_000, Exp).to_string(), "1e3");
        for (v, s, want) in [
            (1, NANO, "1n"),
            (1000, NANO, "1u"),
            (1, MICRO, "1u"),
            (1000, MICRO, "1m"),
            (1, MILLI, "1m"),
            (1000, MILLI, "1"),
            (1, 0, "1"),
            (0, NANO, "0"),
        ] {
            assert_eq!(Quantity::new_scaled(v, s).to_string(), want);
            assert_eq!(q(want).scaled_value(s), v);
        }
        assert_eq!(q("1Gi").as_i64(), Some(1 << 30));
        assert_eq!(q("1500m").as_i64(), None);
        assert_eq!(q("2000m").as_i64(), Some(2));
        assert_eq!(q("1e30").as_i64(), None);
        assert!((q("1.5Gi").as_approximate_f64() - 1610612736.0).abs() < 1e-3);
    }

    // upstream TestSub, TestNeg, TestQuantityAddZeroPreservesSuffix, TestQuantitySubZeroPreservesSuffix
    #[test]
    fn arithmetic() {
        let subs = [
            (dq(10, 0, Dec), dq(1, 1, Dec), dq(0, 0, Dec)),
            (dq(10, 0, Dec), dq(1, 0, Bin), dq(9, 0, Dec)),
            (dq(10, 0, Bin), dq(1, 0, Dec), dq(9, 0, Bin)),
            (Quantity::zero(Dec), dq(50, 0, Dec), dq(-50, 0, Dec)),
            (dq(50, 0, Dec), Quantity::zero(Dec), dq(50, 0, Dec)),
            (Quantity::zero(Dec), Quantity::zero(Dec), dq(0, 0, Dec)),
        ];
        for (a, b, want) in subs {
            let got = a.sub(&b);
            assert_eq!(got, want, "{a:?} - {b:?} = {got}");
            assert_eq!(
                got.format(),
                if a.is_zero() { b.format() } else { a.format() }
            );
        }
        for v in ["100m", "1Gi"] {
            let zero = q("0");
            assert_eq!(q(v).add(&zero).to_string(), v);
            assert_eq!(zero.add(&q(v)).to_string(), v);
            assert_eq!(q(v).sub(&zero).to_string(), v);
            assert_eq!(zero.sub(&q(v)).to_string(), q(v).neg().to_string());
        }
        assert_eq!(dq(901, -2, Dec).neg().to_string(), "-9010m");
        assert_eq!(dq(-10, 0, Bin).neg(), dq(10, 0, Bin));

        assert_eq!((&q("250m") + &q("1.5")).to_string(), "1750m");
        assert_eq!((&q("1Gi") + &q("512Mi")).to_string(), "1536Mi");
        assert_eq!((&q("1Gi") - &q("1Gi")).to_string(), "0");
        assert_eq!((&q("100m") - &q("1")).to_string(), "-900m");
        let total: Quantity = ["100m", "200m", "700m"].iter().map(|s| q(s)).sum();
        assert_eq!(total.to_string(), "1");
        let mut acc = q("1");
        acc += &q("1n");
        assert_eq!(acc.to_string(), "1000000001n");
        acc -= &q("1");
        assert_eq!(acc.to_string(), "1n");
        assert_eq!(q("2").mul_i64(3).to_string(), "6");
        assert_eq!(q("1.5Gi").mul_i64(2).to_string(), "3Gi");

        // exact across the int64 boundary, where upstream switches to arbitrary precision
        let most_negative = Quantity::new(i64::MIN, Dec);
        assert_eq!(
            Quantity::zero(Dec).sub(&most_negative).to_string(),
            "9223372036854775808"
        );
        assert_eq!(
            Quantity::new(1, Dec).sub(&most_negative).to_string(),
            "9223372036854775809"
        );
        assert_eq!(
            Quantity::new_scaled(1, MILLI)
                .sub(&Quantity::new_scaled(i64::MIN, MILLI))
                .to_string(),
            "9223372036854775809m"
        );
        // far-apart exponents never panic; the tiny term rounds away from zero
        let huge = q("1e100");
        let sum = huge.add(&q("1n"));
        assert!(sum > huge);
        assert_eq!(huge.sub(&huge).to_string(), "0");
    }

    #[test]
    fn equality_and_hash_are_by_value() {
        use std::collections::HashSet;
        let set: HashSet<Quantity> = ["1", "1000m", "1e0", "0.001k", "1.0"]
            .iter()
            .map(|s| q(s))
            .collect();
        assert_eq!(set.len(), 1);
        assert_eq!(q("0"), q("0Gi"));
    }

    #[test]
    fn api_interop() {
        let api = ApiQuantity(" 1024Mi ".to_string());
        let v = Quantity::from_api(&api).expect("valid");
        assert_eq!(v.to_api(), ApiQuantity("1Gi".to_string()));
        assert_eq!(Quantity::from_api_opt(None).expect("none"), None);
        assert!(Quantity::try_from(&ApiQuantity("bogus".into())).is_err());
        assert_eq!(canonicalize("0.5").expect("valid"), "500m");
        assert_eq!(canonicalize("1.441").expect("valid"), "1.441");
        let mut a = ApiQuantity("1000M".into());
        canonicalize_api(&mut a).expect("valid");
        assert_eq!(a.0, "1G");
        let back: ApiQuantity = (&q("2Gi")).into();
        assert_eq!(back.0, "2Gi");
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let long = format!("{}Ki", "9".repeat(10_000));
        assert_eq!(q(&long).to_string(), "9223372036854775807");
        let long_frac = format!("0.{}1", "0".repeat(10_000));
        assert_eq!(q(&long_frac).to_string(), "1n");
        let many_digits = "1234567890".repeat(10);
        let v = q(&many_digits);
        assert!(v > q("1e99") && v < q("1e100"));
        for s in [
            "1e-2147483647",
            "-1e2147483647",
            "0.000000000000000000000000000000001Ei",
            "999999999999999999999999999999999999999999Ei",
        ] {
            let v = q(s);
            let _ = (
                v.to_string(),
                v.value(),
                v.milli_value(),
                v.add(&q("1")),
                v.mul_i64(i64::MAX),
                v.round_up(EXA),
            );
        }
        assert_eq!(q("1e-2147483647").to_string(), "1e-9");
        assert_eq!(q("1e-2147483647").format(), Format::DecimalExponent);
    }
}
