//! Label and field selectors: parsing the string forms, converting LabelSelector, matching.
//!
//! A port of upstream `k8s.io/apimachinery/pkg/labels/selector.go`, `pkg/fields/selector.go`,
//! `metav1.LabelSelectorAsSelector` and `metav1/validation.ValidateLabelSelector`. Parsing,
//! canonical strings and error texts follow upstream so that `kubectl get -l ...` and
//! `--field-selector` behave (and fail) exactly as against a real apiserver.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use crate::field::{aggregate, FieldError, FieldErrorList, Path};
use crate::names::{is_qualified_name, is_valid_label_value, validate_label_name, validate_labels};

/// Errors from parsing or converting label and field selectors. The texts are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// One requirement of a label selector string is malformed or invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// The label selector string is malformed between requirements.
    #[error("{0}")]
    Syntax(String),
    /// A requirement built in code or from a LabelSelector object failed validation
    /// (upstream's aggregated field errors, e.g. `key: Invalid value: "A@": ...`).
    #[error("{0}")]
    Invalid(String),
    /// A matchExpressions operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{0:?} is not a valid pod selector operator")]
    UnknownOperator(String),
    /// `gt`/`lt` cannot be expressed in a LabelSelector object.
    #[error("{0:?} isn't supported in label selectors")]
    UnsupportedOperator(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A backslash in a field selector value not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A bare `,` or `=` in a field selector value (upstream prints the code point as a number).
    #[error("invalid field selector: unescaped character in value: {0}")]
    UnescapedChar(u32),
    /// A field selector names a field the resource does not support.
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
}

// ---------------------------------------------------------------------------------------------
// Label selector requirements
// ---------------------------------------------------------------------------------------------

/// A label selector operator (upstream `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// Upstream's string for the operator (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`, `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement of a label selector: a key, an operator and the values it relates them by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// Where requirement errors are reported: upstream uses a nil path for selectors parsed from
/// strings, which its key check prints as `<nil>` and its value checks as `values[0][key]`.
fn requirement_errors(key: &str, op: Operator, vals: &[String]) -> FieldErrorList {
    let mut errs = Vec::new();
    let path = Path::default();
    if let Some(e) = validate_label_key(key, &path.child("key")) {
        errs.push(e);
    }
    let value_path = path.child("values");
    let vals_json = || Value::Array(vals.iter().cloned().map(Value::String).collect());
    match op {
        Operator::In | Operator::NotIn => {
            if vals.is_empty() {
                errs.push(FieldError::invalid(
                    &value_path,
                    vals_json(),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
            if vals.len() != 1 {
                errs.push(FieldError::invalid(
                    &value_path,
                    vals_json(),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Operator::Exists | Operator::DoesNotExist => {
            if !vals.is_empty() {
                errs.push(FieldError::invalid(
                    &value_path,
                    vals_json(),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Operator::GreaterThan | Operator::LessThan => {
            if vals.len() != 1 {
                errs.push(FieldError::invalid(
                    &value_path,
                    vals_json(),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in vals.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        &value_path.index(i),
                        v.as_str(),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, v) in vals.iter().enumerate() {
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &value_path.index(i).key(key),
                v.as_str(),
                msgs.join("; "),
            ));
        }
    }
    errs
}

fn validate_label_key(key: &str, path: &Path) -> Option<FieldError> {
    let msgs = is_qualified_name(key);
    if msgs.is_empty() {
        None
    } else {
        Some(FieldError::invalid(path, key, msgs.join("; ")))
    }
}

impl Requirement {
    /// Upstream `NewRequirement`: validates the key (a qualified name), the value count for the
    /// operator, `gt`/`lt` values as integers, and every value as a label value.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, SelectorError> {
        let key = key.into();
        let errs = requirement_errors(&key, operator, &values);
        if !errs.is_empty() {
            return Err(SelectorError::Invalid(aggregate(&errs)));
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order given (sorted and deduplicated when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether the requirement holds for a label lookup. A missing key satisfies only `notin`,
    /// `!=` and `!key`.
    pub fn matches_fn<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let got = get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                got.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => got.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(label) = got.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    label > want
                } else {
                    label < want
                }
            }
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_fn(|k| labels.get(k).map(String::as_str))
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, set) = match self.operator {
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        if set {
            f.write_str("(")?;
        }
        // Upstream sorts values on output so that equal selectors print alike.
        let mut vals: Vec<&str> = self.values.iter().map(String::as_str).collect();
        vals.sort_unstable();
        f.write_str(&vals.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// A parsed label selector: requirements ANDed together, sorted by key.
///
/// Two special values: [`LabelSelector::everything`] (no requirements, matches every object; what
/// an empty string or an empty LabelSelector object means) and [`LabelSelector::nothing`] (matches
/// no object; what an absent (`null`) LabelSelector object means).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Matches every set of labels.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// Matches no set of labels (upstream `labels.Nothing()`); prints as the empty string.
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses upstream's selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    /// `a`, `!a`, `a>1`, `a<1`, comma-separated.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut p = Parser::new(s);
        let mut reqs = p.parse()?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// Upstream `SelectorFromSet`: `key=value` for every entry, without validation (ReplicationController
    /// and Service selectors). An empty map matches everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> LabelSelector {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Upstream `ValidatedSelectorFromSet`: like [`LabelSelector::from_set`] but validating keys and values.
    pub fn validated_from_set(
        set: &BTreeMap<String, String>,
    ) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::with_capacity(set.len());
        for (k, v) in set {
            requirements.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
            )?);
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Upstream `LabelSelectorAsSelector`: `None` (a nil selector) matches nothing, a selector with
    /// neither matchLabels nor matchExpressions matches everything.
    pub fn from_api(sel: Option<&metav1::LabelSelector>) -> Result<LabelSelector, SelectorError> {
        let Some(sel) = sel else {
            return Ok(LabelSelector::nothing());
        };
        let labels = sel.match_labels.as_ref();
        let exprs = sel.match_expressions.as_deref().unwrap_or_default();
        if labels.is_none_or(BTreeMap::is_empty) && exprs.is_empty() {
            return Ok(LabelSelector::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in labels.into_iter().flatten() {
            requirements.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
            )?);
        }
        for expr in exprs {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnknownOperator(other.to_string())),
            };
            requirements.push(Requirement::new(
                expr.key.clone(),
                op,
                expr.values.clone().unwrap_or_default(),
            )?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Upstream `ParseToLabelSelector`'s conversion: `=`/`==` become matchLabels, set operators
    /// matchExpressions. `!=` and `gt`/`lt` have no LabelSelector form.
    pub fn to_api(&self) -> Result<metav1::LabelSelector, SelectorError> {
        let mut match_labels = BTreeMap::new();
        let mut match_expressions = Vec::new();
        for r in &self.requirements {
            let op = match r.operator {
                Operator::Equals | Operator::DoubleEquals => {
                    let [v] = r.values.as_slice() else {
                        return Err(SelectorError::Invalid(
                            "equals operator must have exactly one value".to_string(),
                        ));
                    };
                    match_labels.insert(r.key.clone(), v.clone());
                    continue;
                }
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
                Operator::GreaterThan | Operator::LessThan => {
                    return Err(SelectorError::UnsupportedOperator(
                        r.operator.as_str().to_string(),
                    ))
                }
                Operator::NotEquals => {
                    return Err(SelectorError::Invalid(
                        "\"!=\" is not a valid label selector operator".to_string(),
                    ))
                }
            };
            let mut values = r.values.clone();
            values.sort();
            values.dedup();
            match_expressions.push(metav1::LabelSelectorRequirement {
                key: r.key.clone(),
                operator: op.to_string(),
                values: if values.is_empty() {
                    None
                } else {
                    Some(values)
                },
            });
        }
        Ok(metav1::LabelSelector {
            match_labels: if match_labels.is_empty() {
                None
            } else {
                Some(match_labels)
            },
            match_expressions: if match_expressions.is_empty() {
                None
            } else {
                Some(match_expressions)
            },
        })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector does not restrict anything (matches every object).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches no object.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Adds a requirement, keeping requirements sorted by key.
    pub fn add_requirement(mut self, r: Requirement) -> LabelSelector {
        if self.nothing {
            return self;
        }
        self.requirements.push(r);
        self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }

    pub fn matches_fn<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_fn(&get))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_fn(|k| labels.get(k).map(String::as_str))
    }

    /// Matches an object's `metadata.labels`, where absent labels count as no labels.
    pub fn matches_labels(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.matches_fn(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
    }

    /// Upstream `RequiresExactMatch`: the single value the label must have (`=`, `==` or a
    /// one-value `in` on the first requirement for that key), if any.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

/// Upstream `metav1.FormatLabelSelector`, used by printers and `status.selector` of scale:
/// `<none>` for a selector that prints empty, `<error>` for an invalid one.
pub fn format_label_selector(sel: Option<&metav1::LabelSelector>) -> String {
    match LabelSelector::from_api(sel) {
        Ok(s) => {
            let out = s.to_string();
            if out.is_empty() {
                "<none>".to_string()
            } else {
                out
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

// --- the lexer and parser, ported from upstream so error texts and corner cases agree ---

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn bytes_to_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Like upstream, a NUL byte reads as end of input.
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buf = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
        }
        match literal_token(&buf) {
            Some(t) => (t, bytes_to_string(&buf)),
            None => (Token::Identifier, bytes_to_string(&buf)),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut last: Option<(Token, String)> = None;
        let mut buf = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special_symbol(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
            if let Some(t) = literal_token(&buf) {
                last = Some((t, bytes_to_string(&buf)));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some(item) => item,
            None => (
                Token::Error,
                format!("error expected: keyword found '{}'", bytes_to_string(&buf)),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn new(s: &str) -> Parser {
        let mut lexer = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, at: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(at)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        // `in` and `notin` are ordinary identifiers where a key or value is expected.
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let it = self.item(self.position, ctx);
        self.position += 1;
        it
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(SelectorError::Requirement)?;
                    reqs.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(reqs),
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return new_parsed_requirement(key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_parsed_requirement(key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        // Upstream validates the key here against a nil path, which prints as `<nil>`.
        if let Some(e) = validate_label_key(&lit, &Path::root("<nil>")) {
            return Err(e.to_string());
        }
        let (t, _) = self.lookahead(Context::Values);
        if (t == Token::EndOfString || t == Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// A possibly empty comma-separated list of possibly empty identifiers, as a sorted set.
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

fn new_parsed_requirement(
    key: String,
    op: Operator,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let errs = requirement_errors(&key, op, &values);
    if errs.is_empty() {
        Ok(Requirement {
            key,
            operator: op,
            values,
        })
    } else {
        Err(aggregate(&errs))
    }
}

// ---------------------------------------------------------------------------------------------
// LabelSelector object validation (upstream metav1/validation)
// ---------------------------------------------------------------------------------------------

/// Options for [`validate_label_selector_with`] (upstream `LabelSelectorValidationOptions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelSelectorValidationOptions {
    /// Accept matchExpressions values that are not valid label values; only for updates of
    /// objects that already hold such values.
    pub allow_invalid_label_value_in_selector: bool,
}

/// Upstream `ValidateLabelSelectorRequirement`.
pub fn validate_label_selector_requirement(
    req: &metav1::LabelSelectorRequirement,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    if !opts.allow_invalid_label_value_in_selector {
        for (i, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &path.child("values").index(i),
                    v.as_str(),
                    m,
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateLabelSelector` with default options.
pub fn validate_label_selector(sel: &metav1::LabelSelector, path: &Path) -> FieldErrorList {
    validate_label_selector_with(sel, LabelSelectorValidationOptions::default(), path)
}

/// Upstream `ValidateLabelSelector`: matchLabels as labels, every matchExpressions entry as a
/// requirement (`path.matchExpressions[i]`).
pub fn validate_label_selector_with(
    sel: &metav1::LabelSelector,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> FieldErrorList {
    let mut errs = Vec::new();
    errs.extend(validate_labels(
        sel.match_labels.as_ref(),
        &path.child("matchLabels"),
    ));
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_label_selector_requirement(
            expr,
            opts,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

/// Upstream `LabelSelectorHasInvalidLabelValue`: whether an existing selector holds values that
/// would fail validation today (so an update may keep them).
pub fn label_selector_has_invalid_label_value(sel: Option<&metav1::LabelSelector>) -> bool {
    sel.into_iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
        .flat_map(|e| e.values.iter().flatten())
        .any(|v| !is_valid_label_value(v).is_empty())
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// The operator of a field selector term. `==` parses as `Equals` (upstream treats them alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One term of a field selector: `field=value` or `field!=value` (value unescaped).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// A missing field compares as the empty string, as upstream's `Fields.Get` does.
    fn matches_fn<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> bool {
        let got = get(&self.field).unwrap_or("");
        match self.operator {
            FieldOperator::Equals => got == self.value,
            FieldOperator::NotEquals => got != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_value(&self.value))
    }
}

/// A parsed field selector: terms ANDed together. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Parses `a=b`, `a==b`, `a!=b`, comma-separated, with `\,` `\=` `\\` escapes in values.
    /// Terms are kept in the sorted order of their source text, as upstream does.
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: selector.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator: op,
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Upstream `OneTermEqualSelector`.
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        FieldSelector {
            terms: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// Upstream `OneTermNotEqualSelector`.
    pub fn one_term_not_equal(field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        FieldSelector {
            terms: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::NotEquals,
                value: value.into(),
            }],
        }
    }

    /// Upstream `SelectorFromSet`: `field=value` for every entry, in key order.
    pub fn from_set(set: &BTreeMap<String, String>) -> FieldSelector {
        FieldSelector {
            terms: set
                .iter()
                .map(|(k, v)| FieldRequirement {
                    field: k.clone(),
                    operator: FieldOperator::Equals,
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// Upstream `AndSelectors`.
    pub fn and(mut self, other: FieldSelector) -> FieldSelector {
        self.terms.extend(other.terms);
        self
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The field names the selector uses, in term order (may repeat).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// Fails with upstream's `field label not supported: <field>` for the first field that
    /// `supported` rejects.
    pub fn check_supported(&self, supported: impl Fn(&str) -> bool) -> Result<(), SelectorError> {
        match self.fields().find(|f| !supported(f)) {
            Some(f) => Err(SelectorError::FieldLabelNotSupported(f.to_string())),
            None => Ok(()),
        }
    }

    /// Upstream `Transform`: rewrites every term's field and value (e.g. to canonicalize a field
    /// label); a term mapped to an empty field and value is dropped.
    pub fn transform<E>(
        &self,
        mut f: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<FieldSelector, E> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let (field, value) = f(&t.field, &t.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(FieldRequirement {
                field,
                operator: t.operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Upstream `RequiresExactMatch`: the value of the first `field=value` term for `field`.
    /// The server uses it for `metadata.name` / `metadata.namespace` to narrow a list or watch.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.operator == FieldOperator::Equals && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// `metadata.name=X`, if the selector requires it.
    pub fn exact_name(&self) -> Option<&str> {
        self.requires_exact_match("metadata.name")
    }

    /// `metadata.namespace=X`, if the selector requires it.
    pub fn exact_namespace(&self) -> Option<&str> {
        self.requires_exact_match("metadata.namespace")
    }

    /// Whether every term holds; `get` returns a field's value, `None` for an absent field
    /// (compared as the empty string, as upstream does).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms.iter().all(|t| t.matches_fn(&get))
    }

    /// [`FieldSelector::matches`] over `(field, value)` pairs.
    pub fn matches_pairs(&self, fields: &[(&str, &str)]) -> bool {
        self.matches(|f| fields.iter().find(|(k, _)| *k == f).map(|(_, v)| *v))
    }

    /// [`FieldSelector::matches`] over a map of field values.
    pub fn matches_set(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches(|f| fields.get(f).map(String::as_str))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Upstream `EscapeValue`: prefixes `\`, `,` and `=` with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream `UnescapeValue`: undoes [`escape_value`]; a bare `,` or `=`, an unknown escape or a
/// trailing backslash is an error.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedChar(c as u32)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

/// Splits on commas not escaped by a backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator; `!=` and `==` are tried before `=` at each position so
/// that no `=` is left on the value. The field part has no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in OPS {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, rhs));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: Operator, vals: &[&str]) -> Requirement {
        let mut v: Vec<String> = vals.iter().map(|s| s.to_string()).collect();
        v.sort();
        v.dedup();
        Requirement::new(key, op, v).expect("valid requirement")
    }

    // upstream TestSelectorParse
    #[test]
    fn parse_good_and_bad_strings() {
        for s in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(sel.to_string(), s.replace(' ', ""), "restring of {s:?}");
        }
        for s in ["x=a||y=b", "x==a==b", "!x=a", "x<a"] {
            assert!(LabelSelector::parse(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn deterministic_parse() {
        let a = LabelSelector::parse("x=a,a=x").expect("parse");
        let b = LabelSelector::parse("a=x,x=a").expect("parse");
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(a.to_string(), "a=x,x=a");
    }

    // upstream TestSelectorMatches
    #[test]
    fn selector_matches() {
        let yes = |s: &str, l: &[(&str, &str)]| {
            assert!(
                LabelSelector::parse(s).expect("parse").matches(&set(l)),
                "{s} should match {l:?}"
            )
        };
        let no = |s: &str, l: &[(&str, &str)]| {
            assert!(
                !LabelSelector::parse(s).expect("parse").matches(&set(l)),
                "{s} should not match {l:?}"
            )
        };
        yes("", &[("x", "y")]);
        yes("x=y", &[("x", "y")]);
        yes("x=y,z=w", &[("x", "y"), ("z", "w")]);
        yes("x!=y,z!=w", &[("x", "z"), ("z", "a")]);
        yes("notin=in", &[("notin", "in")]);
        yes("x", &[("x", "z")]);
        yes("!x", &[("y", "z")]);
        yes("x>1", &[("x", "2")]);
        yes("x<1", &[("x", "0")]);
        no("x=z", &[]);
        no("x=y", &[("x", "z")]);
        no("x=y,z=w", &[("x", "w"), ("z", "w")]);
        no("x!=y,z!=w", &[("x", "z"), ("z", "w")]);
        no("x", &[("y", "z")]);
        no("!x", &[("x", "z")]);
        no("x>1", &[("x", "0")]);
        no("x<1", &[("x", "2")]);
        let labels = [("foo", "bar"), ("baz", "blah")];
        yes("foo=bar", &labels);
        yes("baz=blah", &labels);
        yes("foo=bar,baz=blah", &labels);
        no("foo=blah", &labels);
        no("baz=bar", &labels);
        no("foo=bar,foobar=bar,baz=blah", &labels);
        yes("foo in (bar, x)", &labels);
        no("foo notin (bar)", &labels);
        yes("missing notin (bar)", &labels);
    }

    // upstream TestSetSelectorParser
    #[test]
    fn set_selector_parser() {
        let cases: Vec<(&str, Option<Vec<Requirement>>)> = vec![
            ("", Some(vec![])),
            ("\rx", Some(vec![req("x", Operator::Exists, &[])])),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                Some(vec![req(
                    "this-is-a-dns.domain.com/key-with-dash",
                    Operator::Exists,
                    &[],
                )]),
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                Some(vec![req(
                    "this-is-another-dns.domain.com/key-with-dash",
                    Operator::In,
                    &["so", "what"],
                )]),
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                Some(vec![req(
                    "0.1.2.domain/99",
                    Operator::NotIn,
                    &["10.10.100.1", "tick.tack.clock"],
                )]),
            ),
            (
                "foo  in\t (abc)",
                Some(vec![req("foo", Operator::In, &["abc"])]),
            ),
            (
                "x notin\n (abc)",
                Some(vec![req("x", Operator::NotIn, &["abc"])]),
            ),
            (
                "x  notin\t\t\t(abc,def)",
                Some(vec![req("x", Operator::NotIn, &["abc", "def"])]),
            ),
            (
                "x in (abc,def)",
                Some(vec![req("x", Operator::In, &["abc", "def"])]),
            ),
            (
                "x in (abc,)",
                Some(vec![req("x", Operator::In, &["abc", ""])]),
            ),
            ("x in ()", Some(vec![req("x", Operator::In, &[""])])),
            (
                "x notin (abc,,def),bar,z in (),w",
                Some(vec![
                    req("bar", Operator::Exists, &[]),
                    req("w", Operator::Exists, &[]),
                    req("x", Operator::NotIn, &["abc", "", "def"]),
                    req("z", Operator::In, &[""]),
                ]),
            ),
            ("x=a", Some(vec![req("x", Operator::Equals, &["a"])])),
            ("x>1", Some(vec![req("x", Operator::GreaterThan, &["1"])])),
            ("x<7", Some(vec![req("x", Operator::LessThan, &["7"])])),
            (
                "x=a,y!=b",
                Some(vec![
                    req("x", Operator::Equals, &["a"]),
                    req("y", Operator::NotEquals, &["b"]),
                ]),
            ),
            (
                "x=a,y!=b,z in (h,i,j)",
                Some(vec![
                    req("x", Operator::Equals, &["a"]),
                    req("y", Operator::NotEquals, &["b"]),
                    req("z", Operator::In, &["h", "i", "j"]),
                ]),
            ),
            ("x=a||y=b", None),
            (
                "x,y",
                Some(vec![
                    req("x", Operator::Exists, &[]),
                    req("y", Operator::Exists, &[]),
                ]),
            ),
            ("x,,y", None),
            (",x,y", None),
            ("x nott in (y)", None),
            ("x notin ( )", Some(vec![req("x", Operator::NotIn, &[""])])),
            (
                "x notin (, a)",
                Some(vec![req("x", Operator::NotIn, &["", "a"])]),
            ),
            ("a in (xyz),", None),
            ("a in (xyz)b notin ()", None),
            ("a ", Some(vec![req("a", Operator::Exists, &[])])),
            (
                "a in (x,y,notin, z,in)",
                Some(vec![req(
                    "a",
                    Operator::In,
                    &["in", "notin", "x", "y", "z"],
                )]),
            ),
            ("a in (xyz abc)", None),
            ("a notin(", None),
            ("a (", None),
            ("(", None),
        ];
        for (input, want) in cases {
            match (LabelSelector::parse(input), want) {
                (Ok(sel), Some(want)) => {
                    assert_eq!(sel.requirements(), want.as_slice(), "{input:?}")
                }
                (Err(_), None) => {}
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    // upstream TestRequirementConstructor
    #[test]
    fn requirement_constructor() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: Vec<(String, Operator, Vec<String>, bool)> = vec![
            ("x".into(), Operator::In, vec![], false),
            ("x".into(), Operator::NotIn, vec![], false),
            ("x".into(), Operator::In, s(&["foo"]), true),
            ("x".into(), Operator::NotIn, s(&["foo"]), true),
            ("x".into(), Operator::Exists, vec![], true),
            ("x".into(), Operator::DoesNotExist, vec![], true),
            ("1foo".into(), Operator::In, s(&["bar"]), true),
            ("1234".into(), Operator::In, s(&["bar"]), true),
            ("y".into(), Operator::GreaterThan, s(&["1"]), true),
            ("z".into(), Operator::LessThan, s(&["6"]), true),
            ("foo".into(), Operator::GreaterThan, s(&["bar"]), false),
            ("barz".into(), Operator::LessThan, s(&["blah"]), false),
            ("a".repeat(254), Operator::Exists, vec![], false),
            ("x".into(), Operator::Exists, s(&["a"]), false),
            ("x".into(), Operator::Equals, s(&["a", "b"]), false),
        ];
        for (k, op, v, ok) in cases {
            assert_eq!(
                Requirement::new(k.clone(), op, v.clone()).is_ok(),
                ok,
                "{k} {op} {v:?}"
            );
        }
    }

    // upstream TestToString
    #[test]
    fn to_string_forms() {
        let sel = |rs: Vec<Requirement>| {
            rs.into_iter()
                .fold(LabelSelector::everything(), LabelSelector::add_requirement)
        };
        let cases = vec![
            (
                vec![
                    req("x", Operator::In, &["abc", "def"]),
                    req("y", Operator::NotIn, &["jkl"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x in (abc,def),y notin (jkl),z",
            ),
            (
                vec![
                    req("x", Operator::NotIn, &["abc", "def"]),
                    req("y", Operator::NotEquals, &["jkl"]),
                    req("z", Operator::DoesNotExist, &[]),
                ],
                "x notin (abc,def),y!=jkl,!z",
            ),
            (
                vec![
                    req("x", Operator::NotIn, &["abc"]),
                    req("y", Operator::In, &["jkl", "mno"]),
                    req("z", Operator::NotIn, &[""]),
                ],
                "x notin (abc),y in (jkl,mno),z notin ()",
            ),
            (
                vec![
                    req("x", Operator::Equals, &["abc"]),
                    req("y", Operator::DoubleEquals, &["jkl"]),
                    req("z", Operator::NotEquals, &["a"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x=abc,y==jkl,z!=a,z",
            ),
            (
                vec![
                    req("x", Operator::GreaterThan, &["2"]),
                    req("y", Operator::LessThan, &["8"]),
                    req("z", Operator::Exists, &[]),
                ],
                "x>2,y<8,z",
            ),
        ];
        for (rs, want) in cases {
            assert_eq!(sel(rs).to_string(), want);
        }
        // values print sorted even when given unsorted
        let r = Requirement::new("x", Operator::In, vec!["b".into(), "a".into()]).expect("valid");
        assert_eq!(r.to_string(), "x in (a,b)");
    }

    // upstream TestRequirementSelectorMatching
    #[test]
    fn requirement_selector_matching() {
        let sel = |rs: Vec<Requirement>| {
            rs.into_iter()
                .fold(LabelSelector::everything(), LabelSelector::add_requirement)
        };
        let cases = vec![
            (
                set(&[("x", "foo"), ("y", "baz")]),
                sel(vec![
                    req("x", Operator::In, &["foo"]),
                    req("y", Operator::NotIn, &["alpha"]),
                ]),
                true,
            ),
            (
                set(&[("x", "foo"), ("y", "baz")]),
                sel(vec![
                    req("x", Operator::In, &["foo"]),
                    req("y", Operator::In, &["alpha"]),
                ]),
                false,
            ),
            (
                set(&[("y", "")]),
                sel(vec![
                    req("x", Operator::NotIn, &[""]),
                    req("y", Operator::Exists, &[]),
                ]),
                true,
            ),
            (
                set(&[("y", "")]),
                sel(vec![
                    req("x", Operator::DoesNotExist, &[]),
                    req("y", Operator::Exists, &[]),
                ]),
                true,
            ),
            (
                set(&[("y", "")]),
                sel(vec![
                    req("x", Operator::NotIn, &[""]),
                    req("y", Operator::DoesNotExist, &[]),
                ]),
                false,
            ),
            (
                set(&[("y", "baz")]),
                sel(vec![req("x", Operator::In, &[""])]),
                false,
            ),
            (
                set(&[("z", "2")]),
                sel(vec![req("z", Operator::GreaterThan, &["1"])]),
                true,
            ),
            (
                set(&[("z", "v2")]),
                sel(vec![req("z", Operator::GreaterThan, &["1"])]),
                false,
            ),
        ];
        for (labels, s, want) in cases {
            assert_eq!(s.matches(&labels), want, "{s} on {labels:?}");
        }
    }

    #[test]
    fn error_messages_read_as_upstream() {
        let err = |s: &str| {
            LabelSelector::parse(s)
                .expect_err("should fail")
                .to_string()
        };
        assert_eq!(
            err("x y"),
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("x=a,"), "found '', expected: identifier after ','");
        assert_eq!(err("x=a y"), "found 'y', expected: ',' or 'end of string'");
        assert_eq!(
            err(",x"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(err("!x=a"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err("x in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(
            err("x in (a b)"),
            "unable to parse requirement: found 'b', expected: ',' or ')'"
        );
        assert_eq!(
            err("x<a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            err("A@=b"),
            "unable to parse requirement: <nil>: Invalid value: \"A@\": name part must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
             '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(err("x=a@b").starts_with("unable to parse requirement: values[0][x]: Invalid value: \"a@b\": a valid label must be"));
        assert!(
            err(&format!("x={}", "a".repeat(64))).contains("must be no more than 63 characters")
        );
        assert!(err("a/b/c").contains("with an optional DNS subdomain prefix and '/'"));
        assert!(err("Bad_Prefix/x").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(err("/x").contains("prefix part must be non-empty"));
    }

    #[test]
    fn lexer_corner_cases() {
        // `||` is an identifier, `===` lexes as `==` then `=`, a NUL ends the input.
        assert!(LabelSelector::parse("x=||").is_err());
        assert!(LabelSelector::parse("x===a").is_err());
        let sel = LabelSelector::parse("x \0=y").expect("NUL ends input");
        assert_eq!(sel.to_string(), "x");
        assert_eq!(
            LabelSelector::parse("x\0=y")
                .expect("NUL inside a word is dropped")
                .to_string(),
            "x=y"
        );
        assert_eq!(
            LabelSelector::parse("in=notin")
                .expect("keywords as key/value")
                .to_string(),
            "in=notin"
        );
        // non-ASCII never panics; it is rejected by key validation
        assert!(LabelSelector::parse("ключ=значение").is_err());
    }

    #[test]
    fn everything_nothing_and_sets() {
        let any = set(&[("a", "b")]);
        assert!(LabelSelector::everything().is_empty());
        assert!(LabelSelector::everything().matches(&any));
        assert!(!LabelSelector::nothing().is_empty());
        assert!(!LabelSelector::nothing().matches(&any));
        assert!(!LabelSelector::nothing().matches(&BTreeMap::new()));
        assert_eq!(LabelSelector::nothing().to_string(), "");
        assert!(LabelSelector::from_set(&BTreeMap::new()).is_empty());
        let s = LabelSelector::from_set(&set(&[("foo", "bar"), ("baz", "blah")]));
        assert_eq!(s.to_string(), "baz=blah,foo=bar");
        assert!(s.matches(&set(&[("foo", "bar"), ("baz", "blah"), ("x", "y")])));
        assert!(!s.matches(&set(&[("foo", "bar")])));
        assert!(LabelSelector::validated_from_set(&set(&[("foo", "=bar")])).is_err());
        assert!(s.matches_labels(Some(&set(&[("foo", "bar"), ("baz", "blah")]))));
        assert!(!s.matches_labels(None));
        assert!(LabelSelector::everything().matches_labels(None));
    }

    #[test]
    fn requires_exact_match() {
        let s = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").expect("parse");
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), None);
    }

    fn api(labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> metav1::LabelSelector {
        metav1::LabelSelector {
            match_labels: if labels.is_empty() {
                None
            } else {
                Some(set(labels))
            },
            match_expressions: if exprs.is_empty() {
                None
            } else {
                Some(
                    exprs
                        .iter()
                        .map(|(k, op, v)| metav1::LabelSelectorRequirement {
                            key: k.to_string(),
                            operator: op.to_string(),
                            values: if v.is_empty() {
                                None
                            } else {
                                Some(v.iter().map(|s| s.to_string()).collect())
                            },
                        })
                        .collect(),
                )
            },
        }
    }

    #[test]
    fn from_api_object() {
        assert!(LabelSelector::from_api(None).expect("nil").is_nothing());
        assert!(LabelSelector::from_api(Some(&api(&[], &[])))
            .expect("empty")
            .is_empty());
        let empty_map = metav1::LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        assert!(LabelSelector::from_api(Some(&empty_map))
            .expect("empty")
            .is_empty());

        let s = LabelSelector::from_api(Some(&api(
            &[("app", "web"), ("tier", "fe")],
            &[
                ("env", "In", &["prod", "dev"]),
                ("canary", "DoesNotExist", &[]),
                ("zone", "NotIn", &["b"]),
                ("gpu", "Exists", &[]),
            ],
        )))
        .expect("valid");
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env in (dev,prod),gpu,tier=fe,zone notin (b)"
        );
        assert!(s.matches(&set(&[
            ("app", "web"),
            ("tier", "fe"),
            ("env", "dev"),
            ("gpu", "1")
        ])));
        assert!(!s.matches(&set(&[
            ("app", "web"),
            ("tier", "fe"),
            ("env", "dev"),
            ("gpu", "1"),
            ("canary", "")
        ])));

        let bad_op =
            LabelSelector::from_api(Some(&api(&[], &[("a", "Gt", &["1"])]))).expect_err("bad op");
        assert_eq!(
            bad_op.to_string(),
            "\"Gt\" is not a valid pod selector operator"
        );
        let no_values =
            LabelSelector::from_api(Some(&api(&[], &[("a", "In", &[])]))).expect_err("no values");
        assert_eq!(
            no_values.to_string(),
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        );
        let bad_key =
            LabelSelector::from_api(Some(&api(&[("a b", "c")], &[]))).expect_err("bad key");
        assert!(
            bad_key
                .to_string()
                .starts_with("key: Invalid value: \"a b\": name part must consist"),
            "{bad_key}"
        );

        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&api(&[], &[]))), "<none>");
        assert_eq!(format_label_selector(Some(&api(&[("a", "b")], &[]))), "a=b");
        assert_eq!(
            format_label_selector(Some(&api(&[], &[("a", "Bogus", &[])]))),
            "<error>"
        );
    }

    #[test]
    fn to_api_round_trip() {
        let s = LabelSelector::parse("app=web,env in (prod,dev),!canary,gpu").expect("parse");
        let a = s.to_api().expect("convertible");
        assert_eq!(a.match_labels, Some(set(&[("app", "web")])));
        let back = LabelSelector::from_api(Some(&a)).expect("valid");
        assert_eq!(back.to_string(), s.to_string());
        assert!(LabelSelector::parse("x>1")
            .expect("parse")
            .to_api()
            .is_err());
        assert_eq!(
            LabelSelector::everything().to_api().expect("empty"),
            metav1::LabelSelector::default()
        );
    }

    #[test]
    fn validate_label_selector_object() {
        let p = Path::root("spec").child("selector");
        assert!(
            validate_label_selector(&api(&[("app", "web")], &[("env", "In", &["prod"])]), &p)
                .is_empty()
        );
        let errs = validate_label_selector(
            &api(
                &[("bad key", "v@")],
                &[
                    ("env", "In", &[]),
                    ("x", "Exists", &["a"]),
                    ("y", "Gt", &[]),
                    ("z", "In", &["not valid"]),
                ],
            ),
            &p,
        );
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with(
                "spec.selector.matchLabels: Invalid value: \"bad key\": name part must consist"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with(
                "spec.selector.matchLabels: Invalid value: \"v@\": a valid label must be"
            ),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[2],
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(
            msgs[3],
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        assert_eq!(msgs[4], "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator");
        assert!(
            msgs[5].starts_with(
                "spec.selector.matchExpressions[3].values[0]: Invalid value: \"not valid\""
            ),
            "{msgs:?}"
        );
        assert_eq!(msgs.len(), 6);

        let lax = LabelSelectorValidationOptions {
            allow_invalid_label_value_in_selector: true,
        };
        assert!(
            validate_label_selector_with(&api(&[], &[("z", "In", &["not valid"])]), lax, &p)
                .is_empty()
        );
        assert!(label_selector_has_invalid_label_value(Some(&api(
            &[],
            &[("z", "In", &["not valid"])]
        ))));
        assert!(!label_selector_has_invalid_label_value(Some(&api(
            &[],
            &[("z", "In", &["ok"])]
        ))));
        assert!(!label_selector_has_invalid_label_value(None));
    }

    // --- field selectors: upstream fields/selector_test.go ---

    #[test]
    fn field_split_terms() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("a", vec!["a"]),
            ("a=avalue", vec!["a=avalue"]),
            ("a=avalue,b=bvalue", vec!["a=avalue", "b=bvalue"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                vec!["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("", vec![]),
            ("a=a,", vec!["a=a", ""]),
            (",a=a", vec!["", "a=a"]),
            (r"k=\,,k2=v2", vec![r"k=\,", "k2=v2"]),
            (r"k=\\,k2=v2", vec![r"k=\\", "k2=v2"]),
            (r"k=\\\,,k2=v2", vec![r"k=\\\,", "k2=v2"]),
            (r"k=\a\b\", vec![r"k=\a\b\"]),
            (r"k=\", vec![r"k=\"]),
            ("함=수,목=록", vec!["함=수", "목=록"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_terms(input), want, "{input}");
        }
    }

    #[test]
    fn field_split_term() {
        type Split<'a> = Option<(&'a str, FieldOperator, &'a str)>;
        let cases: Vec<(&str, Split)> = vec![
            ("a=value", Some(("a", FieldOperator::Equals, "value"))),
            ("b==value", Some(("b", FieldOperator::Equals, "value"))),
            ("c!=value", Some(("c", FieldOperator::NotEquals, "value"))),
            ("", None),
            ("a", None),
            (r"k=\,", Some(("k", FieldOperator::Equals, r"\,"))),
            (r"k=\=", Some(("k", FieldOperator::Equals, r"\="))),
            (
                r"k=\\\a\b\=\,\",
                Some(("k", FieldOperator::Equals, r"\\\a\b\=\,\")),
            ),
            ("함=수", Some(("함", FieldOperator::Equals, "수"))),
        ];
        for (input, want) in cases {
            assert_eq!(split_term(input), want, "{input}");
        }
    }

    #[test]
    fn field_escape_values() {
        for (raw, escaped) in [
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            ("\\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ] {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).expect("valid escape"), raw);
        }
        for bad in [r"\", r"\\\", r"\a"] {
            let e = unescape_value(bad).expect_err("invalid escape");
            assert!(e.to_string().contains("invalid escape sequence"), "{e}");
        }
        assert_eq!(
            unescape_value(r"\a").expect_err("bad").to_string(),
            r"invalid field selector: invalid escape sequence: \a"
        );
        assert_eq!(
            unescape_value("a,b").expect_err("bare comma").to_string(),
            "invalid field selector: unescaped character in value: 44"
        );
    }

    #[test]
    fn field_selector_parse() {
        for good in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
            let s = FieldSelector::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(s.to_string(), good);
        }
        for bad in [
            "x=a||y=b",
            "x==a==b",
            "x=a,b",
            "x in (a)",
            "x in (a,b,c)",
            "x",
        ] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            FieldSelector::parse("x=a,b").expect_err("bad").to_string(),
            "invalid selector: 'x=a,b'; can't understand 'b'"
        );
        assert_eq!(
            FieldSelector::parse("x=a,a=x").expect("p").to_string(),
            FieldSelector::parse("a=x,x=a").expect("p").to_string()
        );
        assert_eq!(FieldSelector::parse("b==1").expect("p").to_string(), "b=1");
    }

    #[test]
    fn field_selector_matches() {
        let yes = |s: &str, f: &[(&str, &str)]| {
            assert!(
                FieldSelector::parse(s).expect("parse").matches_pairs(f),
                "{s} {f:?}"
            )
        };
        let no = |s: &str, f: &[(&str, &str)]| {
            assert!(
                !FieldSelector::parse(s).expect("parse").matches_pairs(f),
                "{s} {f:?}"
            )
        };
        yes("", &[("x", "y")]);
        yes("x=y", &[("x", "y")]);
        yes("x=y,z=w", &[("x", "y"), ("z", "w")]);
        yes("x!=y,z!=w", &[("x", "z"), ("z", "a")]);
        yes("notin=in", &[("notin", "in")]);
        no("x=y", &[("x", "z")]);
        no("x=y,z=w", &[("x", "w"), ("z", "w")]);
        no("x!=y,z!=w", &[("x", "z"), ("z", "w")]);
        let fields = [("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")];
        yes("foo=bar", &fields);
        yes("baz=blah", &fields);
        yes("foo=bar,baz=blah", &fields);
        yes(r"foo=bar,baz=blah,complex=\=value\\\,\\", &fields);
        no("foo=blah", &fields);
        no("baz=bar", &fields);
        no("foo=bar,foobar=bar,baz=blah", &fields);
        // a missing field compares as ""
        yes("missing=", &fields);
        yes("missing!=x", &fields);
        assert!(FieldSelector::one_term_equal("x", "y").matches_pairs(&[("x", "y")]));
        assert!(!FieldSelector::one_term_equal("x", "y").matches_pairs(&[("x", "z")]));
        assert!(FieldSelector::from_set(&set(&[("foo", "bar")]))
            .matches_set(&set(&[("foo", "bar"), ("baz", "blah")])));
    }

    #[test]
    fn field_selector_introspection() {
        let s = FieldSelector::parse("metadata.namespace=ns1,metadata.name=web,spec.nodeName!=n1")
            .expect("parse");
        assert_eq!(s.exact_name(), Some("web"));
        assert_eq!(s.exact_namespace(), Some("ns1"));
        assert_eq!(s.requires_exact_match("spec.nodeName"), None);
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            vec!["metadata.name", "metadata.namespace", "spec.nodeName"]
        );
        let supported = |f: &str| f.starts_with("metadata.");
        assert_eq!(
            s.check_supported(supported)
                .expect_err("unsupported")
                .to_string(),
            "field label not supported: spec.nodeName"
        );
        assert!(FieldSelector::parse("metadata.name=x")
            .expect("parse")
            .check_supported(supported)
            .is_ok());
        assert_eq!(
            FieldSelector::parse("a=")
                .expect("parse")
                .requires_exact_match("a"),
            Some("")
        );

        let t = s
            .transform(|f, v| -> Result<_, SelectorError> {
                if f == "metadata.namespace" {
                    Ok((String::new(), String::new()))
                } else {
                    Ok((f.to_string(), v.to_string()))
                }
            })
            .expect("transform");
        assert_eq!(t.to_string(), "metadata.name=web,spec.nodeName!=n1");
        assert!(FieldSelector::everything().is_empty());
        assert_eq!(
            FieldSelector::one_term_equal("a", "b")
                .and(FieldSelector::one_term_not_equal("c", "d,e"))
                .to_string(),
            r"a=b,c!=d\,e"
        );
    }
}
