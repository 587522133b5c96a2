//! Strategic merge patch as the API server applies it (`StrategicMergeMapPatch` of
//! k8s.io/apimachinery/pkg/util/strategicpatch, with `MergeParallelList` and
//! `IgnoreUnmatchedNulls`), including its directives and its element order.

use serde_json::{Map, Value};

use super::schema::{LookupError, Node, PatchMeta, Registry};
use super::PatchError;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

// Upstream's fixed messages (mergepatch/errors.go), which clients may match on.
const ERR_BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const ERR_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// Walks one patch; carries the registry and builds the path of every error.
pub(crate) struct Merger<'a> {
    pub reg: &'a Registry,
}

/// The JSON type of a value as Go's decoder (with integers preserved) would give it: two values
/// of different types never merge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn kind_word(v: &Value) -> &'static str {
    match kind_of(v) {
        Kind::Null => "null",
        Kind::Bool => "bool",
        Kind::Int => "int64",
        Kind::Float => "float64",
        Kind::String => "string",
        Kind::Array => "slice",
        Kind::Object => "map",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn bad(path: &str, message: impl Into<String>) -> PatchError {
    PatchError::BadRequest {
        path: path.to_string(),
        message: message.into(),
    }
}

fn unprocessable(path: &str, message: impl Into<String>) -> PatchError {
    PatchError::Unprocessable {
        path: path.to_string(),
        message: message.into(),
    }
}

fn unmergeable(path: &str, message: impl Into<String>) -> PatchError {
    PatchError::Unmergeable {
        path: path.to_string(),
        message: message.into(),
    }
}

fn lookup_err(path: &str, e: LookupError) -> PatchError {
    unmergeable(path, e.to_string())
}

fn no_merge_key(path: &str, m: &Map<String, Value>, key: &str) -> PatchError {
    unmergeable(
        path,
        format!(
            "map: {} does not contain declared merge key: {key}",
            Value::Object(m.clone())
        ),
    )
}

fn bad_arg_type(path: &str, expected: &str, actual: &Value) -> PatchError {
    unmergeable(
        path,
        format!(
            "expected a {expected}, but received a {}",
            kind_word(actual)
        ),
    )
}

/// Splits `$setElementOrder/containers` into `containers`.
fn extract_key<'k>(path: &str, key: &'k str, prefix: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => Err(bad(path, ERR_BAD_PRIMITIVE_LIST)),
        _ => Err(bad(path, ERR_BAD_SET_ELEMENT_ORDER)),
    }
}

/// Splits the patch strategies of a field into whether `retainKeys` is among them and the other
/// strategy.
fn extract_retain_keys_patch_strategy(
    path: &str,
    strategies: &[&'static str],
) -> Result<(bool, &'static str), PatchError> {
    match strategies {
        [] => Ok((false, "")),
        [s] if *s == RETAIN_KEYS_STRATEGY => Ok((true, "")),
        [s] => Ok((false, s)),
        [a, b] if *a == RETAIN_KEYS_STRATEGY => Ok((true, b)),
        [a, b] if *b == RETAIN_KEYS_STRATEGY => Ok((true, a)),
        _ => Err(unmergeable(
            path,
            format!("unexpected patch strategy: {strategies:?}"),
        )),
    }
}

/// Drops every null property value, in objects and in objects inside lists.
fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

/// Drops every object carrying `$patch`; `None` when the value itself is one.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                if let Some(v) = remove_directives(v) {
                    out.insert(k, v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// The value a list item is ordered and matched by: its merge key, or the item itself for
/// primitives. Missing keys compare as null, as a Go map lookup yields nil.
fn order_key<'v>(item: &'v Value, merge_key: &str, maps: bool) -> &'v Value {
    if maps {
        item.as_object()
            .and_then(|m| m.get(merge_key))
            .unwrap_or(&Value::Null)
    } else {
        item
    }
}

/// The position of `item` in `list`, compared by merge key (or by value for primitives).
fn index_of(list: &[Value], item: &Value, merge_key: &str, maps: bool) -> Option<usize> {
    let want = order_key(item, merge_key, maps);
    list.iter()
        .position(|v| order_key(v, merge_key, maps) == want)
}

/// Go's `sort.SliceStable` over `less(i, j) = index(order, i) < index(order, j)`, falling back to
/// `true` when either is missing, exactly as `normalizeSliceOrder` compares.
fn stable_sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    maps: bool,
) -> Vec<Value> {
    let mut keyed: Vec<(Option<usize>, Value)> = items
        .into_iter()
        .map(|v| (index_of(order, &v, merge_key, maps), v))
        .collect();
    if keyed.iter().all(|(i, _)| i.is_some()) {
        // A consistent order: every stable sort agrees with Go's.
        keyed.sort_by_key(|(i, _)| *i);
    } else {
        // An inconsistent comparator: replay Go's insertion sort (its algorithm for up to 20
        // items, which is every list this can happen on in practice).
        let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        };
        for i in 1..keyed.len() {
            let mut j = i;
            while j > 0 && less(keyed[j].0, keyed[j - 1].0) {
                keyed.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// Go's `deduplicateScalars`, run on the whole array as Go runs it on a slice: the swaps land in
/// the array (which may be aliased), and the returned length is the deduplicated prefix.
fn deduplicate_scalars(s: &mut [Value]) -> usize {
    let mut length = s.len() as isize - 1;
    let mut i: isize = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if s[i as usize] == s[j as usize] {
                s[j as usize] = s[length as usize].clone();
                length -= 1;
                // Go decrements j and its loop increments it again: j stays put.
                continue;
            }
            j += 1;
        }
        i += 1;
    }
    (length + 1) as usize
}

/// The one kind every item of the lists shares (`sliceElementType`).
fn slice_element_kind(path: &str, lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut prev: Option<Kind> = None;
    for list in lists {
        for v in list.iter() {
            let k = kind_of(v);
            match prev {
                None => {
                    if k == Kind::Array {
                        return Err(unprocessable(path, ERR_LIST_OF_LISTS));
                    }
                    if k == Kind::Null {
                        return Err(unmergeable(path, "list contains a null item"));
                    }
                    prev = Some(k);
                }
                Some(p) if p != k => {
                    let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                    return Err(unmergeable(
                        path,
                        format!(
                            "list element types are not identical: {}",
                            Value::Array(all)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| unmergeable(path, "no elements in any of the given slices"))
}

/// The first object in `list` whose `key` equals `value`.
fn find_map_by_key(
    path: &str,
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            return Err(unmergeable(path, format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn validate_merge_key_in_lists(
    path: &str,
    merge_key: &str,
    lists: &[&[Value]],
) -> Result<(), PatchError> {
    for list in lists {
        for item in list.iter() {
            let Some(m) = item.as_object() else {
                return Err(bad_arg_type(path, "map", item));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(path, m, merge_key));
            }
        }
    }
    Ok(())
}

fn is_delete_directive(v: &Value) -> bool {
    v.as_object()
        .and_then(|m| m.get(DIRECTIVE_MARKER))
        .and_then(Value::as_str)
        == Some(DELETE_DIRECTIVE)
}

/// Sorts `to_sort` by `order`, moving `$patch: delete` items of maps to the end.
fn normalize_slice_order(
    path: &str,
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    maps: bool,
) -> Result<Vec<Value>, PatchError> {
    let (keep, to_delete): (Vec<Value>, Vec<Value>) = if maps {
        validate_merge_key_in_lists(path, merge_key, &[&to_sort, order])?;
        to_sort.into_iter().partition(|v| !is_delete_directive(v))
    } else {
        (to_sort, Vec::new())
    };
    let mut sorted = stable_sort_by_order(keep, order, merge_key, maps);
    sorted.extend(to_delete);
    Ok(sorted)
}

/// Interleaves the server-only items with the patch items, each keeping its relative order,
/// using the live list as the tie-breaker (`mergeSortedSlice`).
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    maps: bool,
) -> Vec<Value> {
    let li: Vec<Option<usize>> = left
        .iter()
        .map(|v| index_of(server_order, v, merge_key, maps))
        .collect();
    let ri: Vec<Option<usize>> = right
        .iter()
        .map(|v| index_of(server_order, v, merge_key, maps))
        .collect();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (
        left.into_iter().zip(li).peekable(),
        right.into_iter().zip(ri).peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, Some(l))), Some((_, Some(r)))) => l < r,
            _ => false,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((v, _)) = next {
            out.push(v);
        }
    }
    out
}

fn normalize_element_order(
    path: &str,
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    maps: bool,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(path, patch, patch_order, merge_key, maps)?;
    let server_only = normalize_slice_order(path, server_only, server_order, merge_key, maps)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        maps,
    ))
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|v| by.contains(v))
}

fn partition_maps(
    path: &str,
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut in_patch = Vec::with_capacity(merged.len());
    let mut server_only = Vec::with_capacity(merged.len());
    for v in merged {
        let Some(m) = v.as_object() else {
            return Err(bad_arg_type(path, "map", &v));
        };
        let Some(key_value) = m.get(merge_key) else {
            return Err(no_merge_key(path, m, merge_key));
        };
        if find_map_by_key(path, by, merge_key, key_value)?.is_some() {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

fn partition(
    path: &str,
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if merge_key.is_empty() {
        Ok(partition_primitives(merged, by))
    } else {
        partition_maps(path, merged, by, merge_key)
    }
}

impl<'a> Merger<'a> {
    /// `mergeMap`: merges `patch` into `original` under the schema `node`.
    pub(crate) fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        node: Node<'a>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
            return match directive.as_str() {
                Some(REPLACE_DIRECTIVE) => {
                    patch.shift_remove(DIRECTIVE_MARKER);
                    Ok(patch)
                }
                Some(DELETE_DIRECTIVE) => Ok(Map::new()),
                _ => Err(unmergeable(
                    path,
                    format!(
                        "unknown patch type: {directive} in map: {}",
                        Value::Object(patch.clone())
                    ),
                )),
            };
        }
        apply_retain_keys_directive(&mut original, &mut patch, path)?;
        self.merge_set_element_order_lists(&mut original, &mut patch, node, path)?;

        for (key, patch_v) in patch {
            let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                (
                    extract_key(path, &key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?.to_string(),
                    true,
                )
            } else {
                (key, false)
            };
            let here = join(path, &key);
            if patch_v.is_null() {
                original.shift_remove(&key);
                continue;
            }
            let same_kind = original
                .get(&key)
                .map(|orig| kind_of(orig) == kind_of(&patch_v));
            match same_kind {
                None | Some(false) => {
                    // Absent from the object, or of another type: the patch value replaces it,
                    // minus its nulls and directives; a deletion list of a missing list is moot.
                    if !is_delete_list {
                        let mut v = patch_v;
                        discard_null_values(&mut v);
                        match remove_directives(v) {
                            Some(v) => {
                                original.insert(key, v);
                            }
                            None => {
                                original.shift_remove(&key);
                            }
                        }
                    }
                }
                Some(true) => {
                    let Some(orig_v) = original.get_mut(&key) else {
                        continue;
                    };
                    match (orig_v.take(), patch_v) {
                        (Value::Object(o), Value::Object(p)) => {
                            let (sub, meta) = node
                                .lookup_struct(self.reg, &key)
                                .map_err(|e| lookup_err(&here, e))?;
                            let (_, strategy) =
                                extract_retain_keys_patch_strategy(&here, meta.strategies)?;
                            let merged = if strategy == REPLACE_DIRECTIVE {
                                p
                            } else {
                                self.merge_map(o, p, sub, &here)?
                            };
                            *orig_v = Value::Object(merged);
                        }
                        (Value::Array(o), Value::Array(p)) => {
                            let (sub, meta) = node
                                .lookup_slice(self.reg, &key)
                                .map_err(|e| lookup_err(&here, e))?;
                            let (_, strategy) =
                                extract_retain_keys_patch_strategy(&here, meta.strategies)?;
                            let mut backing = o;
                            *orig_v = Value::Array(self.merge_slice_handler(
                                &mut backing,
                                p,
                                sub,
                                strategy,
                                meta,
                                is_delete_list,
                                &here,
                            )?);
                        }
                        (_, p) => {
                            // Two scalars of one type: the patch value wins.
                            *orig_v = p;
                        }
                    }
                }
            }
        }
        Ok(original)
    }

    /// `mergeSliceHandler`: merged lists and deletion lists merge; every other list is replaced.
    #[allow(clippy::too_many_arguments)]
    fn merge_slice_handler(
        &self,
        backing: &mut [Value],
        patch: Vec<Value>,
        item: Node<'a>,
        strategy: &str,
        meta: PatchMeta<'_>,
        is_delete_list: bool,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        if strategy == MERGE_DIRECTIVE || is_delete_list {
            self.merge_slice(backing, patch, item, meta.merge_key, is_delete_list, path)
        } else {
            Ok(patch)
        }
    }

    /// `mergeSlice`. `backing` starts as the live list and is left as Go leaves the live list's
    /// backing array (deleted items shifted out, appended items written over the freed tail),
    /// because `$setElementOrder` processing orders by that aliased array.
    fn merge_slice(
        &self,
        backing: &mut [Value],
        patch: Vec<Value>,
        item: Node<'a>,
        merge_key: &str,
        is_delete_list: bool,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        if backing.is_empty() && patch.is_empty() {
            return Ok(Vec::new());
        }
        let kind = slice_element_kind(path, &[backing, &patch])?;
        if kind != Kind::Object {
            if is_delete_list {
                return Ok(backing
                    .iter()
                    .filter(|v| !patch.contains(v))
                    .cloned()
                    .collect());
            }
            let merged = if patch.is_empty() {
                // Appending nothing keeps Go's slice, so the deduplication happens in place.
                let n = deduplicate_scalars(backing);
                backing[..n].to_vec()
            } else {
                let mut both = backing.to_vec();
                both.extend(patch.iter().cloned());
                let n = deduplicate_scalars(&mut both);
                both.truncate(n);
                both
            };
            let (in_patch, server_only) = partition(path, merged, &patch, merge_key)?;
            return normalize_element_order(
                path,
                in_patch,
                server_only,
                &patch,
                backing,
                merge_key,
                false,
            );
        }
        if merge_key.is_empty() {
            let name = item.definition().unwrap_or("the list");
            return Err(unmergeable(
                path,
                format!("cannot merge lists without merge key for {name}"),
            ));
        }

        // mergeSliceWithSpecialElements: deletions shift the live array in place.
        let cap = backing.len();
        let mut len = cap;
        let mut replace = false;
        let mut plain = Vec::with_capacity(patch.len());
        for v in patch {
            let Some(m) = v.as_object() else {
                return Err(bad_arg_type(path, "map", &v));
            };
            match m.get(DIRECTIVE_MARKER) {
                None => plain.push(v),
                Some(d) => match d.as_str() {
                    Some(DELETE_DIRECTIVE) => {
                        let Some(key_value) = m.get(merge_key) else {
                            return Err(no_merge_key(path, m, merge_key));
                        };
                        while let Some(i) =
                            find_map_by_key(path, &backing[..len], merge_key, key_value)?
                        {
                            backing[i..len].rotate_left(1);
                            len -= 1;
                        }
                    }
                    Some(REPLACE_DIRECTIVE) => replace = true,
                    Some(MERGE_DIRECTIVE) => {
                        return Err(unmergeable(
                            path,
                            "merging lists cannot yet be specified in the patch",
                        ))
                    }
                    _ => {
                        return Err(unmergeable(
                            path,
                            format!("unknown patch type: {d} in map: {v}"),
                        ))
                    }
                },
            }
        }
        // A deleted item rotated to the tail stands where Go's shift left a copy of the last
        // item; only merge keys are ever read from the tail, and the ones it holds are stale.
        if replace {
            let merged = plain.clone();
            let (in_patch, server_only) = partition(path, merged, &[], merge_key)?;
            return normalize_element_order(
                path,
                in_patch,
                server_only,
                &[],
                &plain,
                merge_key,
                true,
            );
        }

        // mergeSliceWithoutSpecialElements: appends write into the live array until it is full.
        let mut merged: Vec<Value> = backing[..len].to_vec();
        let mut aliased = true;
        for v in &plain {
            let Some(m) = v.as_object() else {
                return Err(bad_arg_type(path, "map", v));
            };
            let Some(key_value) = m.get(merge_key) else {
                return Err(no_merge_key(path, m, merge_key));
            };
            match find_map_by_key(path, &merged, merge_key, key_value)? {
                Some(i) => {
                    let here = format!("{path}[{merge_key}={key_value}]");
                    let original = match merged[i].take() {
                        Value::Object(o) => o,
                        other => return Err(bad_arg_type(&here, "map", &other)),
                    };
                    let result = Value::Object(self.merge_map(original, m.clone(), item, &here)?);
                    if aliased {
                        backing[i] = result.clone();
                    }
                    merged[i] = result;
                }
                None => {
                    if aliased && merged.len() < cap {
                        backing[merged.len()] = v.clone();
                    } else {
                        aliased = false;
                    }
                    merged.push(v.clone());
                }
            }
        }
        let server_order = backing[..len].to_vec();
        let (in_patch, server_only) = partition(path, merged, &plain, merge_key)?;
        normalize_element_order(
            path,
            in_patch,
            server_only,
            &plain,
            &server_order,
            merge_key,
            true,
        )
    }

    /// `mergePatchIntoOriginal`: merges every list that has a `$setElementOrder` and puts it in
    /// that order, removing both from the patch.
    fn merge_set_element_order_lists(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        node: Node<'a>,
        path: &str,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let Some(order_v) = patch.shift_remove(&key) else {
                continue;
            };
            let Value::Array(order) = order_v else {
                return Err(bad_arg_type(&join(path, &key), "slice", &order_v));
            };
            let list_key = extract_key(path, &key, SET_ELEMENT_ORDER_PREFIX)?.to_string();
            let here = join(path, &list_key);
            let original_list = match original.get(&list_key) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(bad_arg_type(&here, "slice", other)),
            };
            let patch_list = match patch.get(&list_key) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(bad_arg_type(&here, "slice", other)),
            };
            let (item, meta) = node
                .lookup_slice(self.reg, &list_key)
                .map_err(|e| lookup_err(&here, e))?;
            let (_, strategy) = extract_retain_keys_patch_strategy(&here, meta.strategies)?;
            validate_patch_with_set_order_list(
                &here,
                patch_list.as_deref().unwrap_or(&[]),
                &order,
                meta.merge_key,
            )?;

            let original_items = original_list.clone().unwrap_or_default();
            let patch_items = patch_list.clone().unwrap_or_default();
            // The live list as Go's aliased slice sees it once merging is done.
            let mut server_order = original_items.clone();
            let merged = match (original_list, patch_list) {
                (Some(o), None) => o,
                (None, Some(p)) => match remove_directives(Value::Array(p)) {
                    Some(Value::Array(p)) => p,
                    _ => continue,
                },
                (Some(_), Some(p)) => self.merge_slice_handler(
                    &mut server_order,
                    p,
                    item,
                    strategy,
                    meta,
                    false,
                    &here,
                )?,
                (None, None) => continue,
            };
            let (in_order, server_only) = partition(&here, merged, &order, meta.merge_key)?;
            let kind = slice_element_kind(&here, &[&original_items, &patch_items])?;
            let both = normalize_element_order(
                &here,
                in_order,
                server_only,
                &order,
                &server_order,
                meta.merge_key,
                kind == Kind::Object,
            )?;
            original.insert(list_key.clone(), Value::Array(both));
            patch.shift_remove(&list_key);
        }
        Ok(())
    }
}

/// `applyRetainKeysDirective`: drops the fields of `original` not named in `$retainKeys`, after
/// checking the patch sets no field outside it.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: &str,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad(path, ERR_BAD_RETAIN_KEYS));
    };
    let retained = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(bad(path, ERR_BAD_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `validatePatchWithSetOrderList`: the patch items (deletions aside) must appear in the
/// `$setElementOrder` list, in the same order.
fn validate_patch_with_set_order_list(
    path: &str,
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut out = Vec::with_capacity(patch_list.len());
        for v in patch_list {
            if !v.is_object() {
                return Err(bad_arg_type(path, "map", v));
            }
            if !is_delete_directive(v) {
                out.push(v);
            }
        }
        out
    };
    let key_equal = |a: &Value, b: &Value| -> Result<bool, PatchError> {
        if merge_key.is_empty() {
            return Ok(a == b);
        }
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            let not_map = if a.is_object() { b } else { a };
            return Err(bad_arg_type(path, "map", not_map));
        };
        match (a.get(merge_key), b.get(merge_key)) {
            (Some(x), Some(y)) => Ok(x == y),
            (None, _) => Err(no_merge_key(path, a, merge_key)),
            (_, None) => Err(no_merge_key(path, b, merge_key)),
        }
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if key_equal(non_delete[pi], &order[oi])? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(unmergeable(
            path,
            format!(
                "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}",
                Value::Array(patch_list.to_vec()),
                Value::Array(order.to_vec())
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
