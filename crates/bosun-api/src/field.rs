//! Field paths and validation errors, shaped like upstream's `k8s.io/apimachinery/pkg/util/validation/field`
//! so that messages read exactly as kubectl users know them
//! (`spec.containers[0].image: Required value`).

use std::fmt;

use serde_json::Value;

/// A path to a field: `spec.containers[0].image`, `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root(name: &str) -> Path {
        Path(name.to_string())
    }
    /// A child field: `spec` → `spec.containers`.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }
    /// A list element: `spec.containers` → `spec.containers[0]`.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }
    /// A map entry: `metadata.labels` → `metadata.labels[app]`.
    pub fn key(&self, k: &str) -> Path {
        Path(format!("{}[{}]", self.0, k))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field errors (upstream's `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The text upstream prints (`Required value`).
    pub fn text(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
            FieldErrorType::TypeInvalid => "Invalid value",
        }
    }
    /// The `reason` of the Status cause (`FieldValueRequired`).
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

/// One validation error on one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub error_type: FieldErrorType,
    pub field: Path,
    /// The offending value; `None` prints no value.
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(
        error_type: FieldErrorType,
        field: &Path,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            error_type,
            field: field.clone(),
            bad_value,
            detail: detail.into(),
        }
    }
    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Required, field, None, detail)
    }
    pub fn invalid(field: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Invalid, field, Some(value.into()), detail)
    }
    pub fn not_supported<S: AsRef<str>>(
        field: &Path,
        value: impl Into<Value>,
        valid: &[S],
    ) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{:?}", v.as_ref())).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            FieldErrorType::NotSupported,
            field,
            Some(value.into()),
            detail,
        )
    }
    pub fn duplicate(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorType::Duplicate, field, Some(value.into()), "")
    }
    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Forbidden, field, None, detail)
    }
    pub fn not_found(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorType::NotFound, field, Some(value.into()), "")
    }
    pub fn too_long(field: &Path, max: usize) -> Self {
        Self::new(
            FieldErrorType::TooLong,
            field,
            None,
            format!("must have at most {max} bytes"),
        )
    }
    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        Self::new(
            FieldErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            format!("must have at most {max} items"),
        )
    }
    pub fn internal(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Internal, field, None, detail)
    }
    pub fn type_invalid(field: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(
            FieldErrorType::TypeInvalid,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// The message without the field (upstream's `ErrorBody`).
    pub fn body(&self) -> String {
        let mut s = match (&self.bad_value, self.error_type) {
            (
                _,
                FieldErrorType::Required
                | FieldErrorType::Forbidden
                | FieldErrorType::TooLong
                | FieldErrorType::Internal,
            ) => self.error_type.text().to_string(),
            (None, t) => t.text().to_string(),
            (Some(v), t) => format!("{}: {}", t.text(), go_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// Formats a bad value as Go's `%q`/`%v` would for the common cases.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Go prints label maps and string lists with %#v; sorted keys as Go's fmt does.
        Value::Object(m) if m.values().all(Value::is_string) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", go_value(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
            let body: Vec<String> = a.iter().map(go_value).collect();
            format!("[]string{{{}}}", body.join(", "))
        }
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// A list of field errors; empty means valid.
pub type FieldErrorList = Vec<FieldError>;

/// Upstream's aggregate formatting: one error as itself, several as `[a, b]`.
pub fn aggregate(errs: &[FieldError]) -> String {
    match errs {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_upstream() {
        let p = Path::root("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(
            FieldError::required(&p, "").to_string(),
            "spec.containers[0].image: Required value"
        );
        let p = Path::root("metadata").child("name");
        assert_eq!(
            FieldError::invalid(&p, "Foo", "a lowercase RFC 1123 subdomain").to_string(),
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain"
        );
        let p = Path::root("spec").child("restartPolicy");
        assert_eq!(
            FieldError::not_supported(&p, "Sometimes", &["Always", "OnFailure", "Never"]).to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        let two = vec![
            FieldError::required(&Path::root("a"), ""),
            FieldError::required(&Path::root("b"), ""),
        ];
        assert_eq!(aggregate(&two), "[a: Required value, b: Required value]");
        assert_eq!(
            Path::root("metadata")
                .child("labels")
                .key("app")
                .to_string(),
            "metadata.labels[app]"
        );
    }
}
