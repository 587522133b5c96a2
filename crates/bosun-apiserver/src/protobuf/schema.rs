//! The shape of the generated message table: what each protobuf field is called in JSON
//! and how its value is encoded.

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The protobuf field number.
    pub tag: u32,
    /// The field's name in the API's JSON form.
    pub json: &'static str,
    /// The type of the value (of each element for repeated fields, of the value for maps).
    pub kind: Kind,
    pub label: Label,
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// A nested message, by full name (the k8s-pb module path and message name).
    Message(&'static str),
}

/// How often a field occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// At most once. Go encodes non-pointer scalars even when zero, so a zero scalar is
    /// dropped as JSON's `omitempty` would drop it, unless `keep_zero` says the Go field is
    /// a pointer whose zero is meaningful (`replicas: 0`).
    Optional { keep_zero: bool },
    /// A list.
    Repeated,
    /// A `map<string, kind>`, encoded as repeated entries {key = 1, value = 2}.
    Map,
    /// A Go struct embedded with `json:",inline"`: its fields go into the parent object.
    Inline,
}

/// The fields of the message called `name`, if the table has it.
pub fn message(name: &str) -> Option<&'static [Field]> {
    let table = super::table::MESSAGES;
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| table[i].1)
}
