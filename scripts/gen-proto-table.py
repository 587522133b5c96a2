#!/usr/bin/env python3
"""Generates crates/bosun-apiserver/src/protobuf/table.rs, the field table of the
Kubernetes protobuf messages bosun decodes.

Field numbers and wire types come from the prost-generated crate k8s-pb 0.9.0; the JSON
names come from k8s-openapi 0.29 (v1_34), whose deserializers list each struct's JSON
property names. Both are read from the local cargo registry:

    python3 scripts/gen-proto-table.py > crates/bosun-apiserver/src/protobuf/table.rs
"""

import glob
import os
import re
import sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
PB = next(os.path.join(r, "k8s-pb-0.9.0/src") for r in REG if os.path.isdir(os.path.join(r, "k8s-pb-0.9.0")))
OA = next(os.path.join(r, "k8s-openapi-0.29.0/src/v1_34") for r in REG if os.path.isdir(os.path.join(r, "k8s-openapi-0.29.0")))

# Stable groups (and the old extensions/v1beta1 kubectl may still name) plus the
# apimachinery packages their messages reference.
MODULES = [
    m
    for m in (
        os.path.relpath(os.path.dirname(p), PB).replace("/", ".")
        for p in glob.glob(os.path.join(PB, "api/*/*/mod.rs"))
    )
    if re.search(r"\.v[12]$", m) or m == "api.extensions.v1beta1"
] + [
    "apimachinery.pkg.apis.meta.v1",
    "apimachinery.pkg.runtime",
    "apimachinery.pkg.util.intstr",
    "apimachinery.pkg.api.resource",
]

# Singular scalars are encoded by Go whether or not they are set when the Go field is a
# value (not a pointer), so a zero on the wire usually means "unset" and is dropped, as
# `omitempty` drops it from JSON. These fields are Go pointers whose zero means something
# (replicas: 0, automountServiceAccountToken: false, storageClassName: ""), so a zero
# present on the wire is kept. Keys are JSON names, or Message.jsonName for one message.
KEEP_ZERO = {
    # int32/int64 pointers
    "replicas", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "parallelism",
    "completions", "activeDeadlineSeconds", "ttlSecondsAfterFinished",
    "startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
    "revisionHistoryLimit", "progressDeadlineSeconds", "terminationGracePeriodSeconds",
    "deletionGracePeriodSeconds", "gracePeriodSeconds", "defaultMode", "mode", "fsGroup",
    "runAsUser", "runAsGroup", "priority", "minReplicas", "targetCPUUtilizationPercentage",
    "averageUtilization", "leaseDurationSeconds", "leaseTransitions", "expirationSeconds",
    "ClientIPConfig.timeoutSeconds", "PriorityClass.value", "stabilizationWindowSeconds",
    "EndpointPort.port", "ordinals", "start", "minReadySeconds",
    # bool pointers
    "automountServiceAccountToken", "enableServiceLinks", "hostUsers",
    "allocateLoadBalancerNodePorts", "allowPrivilegeEscalation", "ready", "serving",
    "terminating", "immutable", "suspend", "privileged", "runAsNonRoot",
    "readOnlyRootFilesystem", "shareProcessNamespace", "setHostnameAsFQDN",
    "manualSelector", "orphanDependents", "optional", "preemptionPolicy",
    # string pointers
    "storageClassName", "EndpointPort.name",
}

# Go structs embedded with `json:",inline"` (k8s-pb field names): their fields sit in the
# parent's JSON object.
INLINE = {
    "local_object_reference", "handler", "volume_source", "persistent_volume_source",
    "ephemeral_container_common", "ingress_rule_value", "device_configuration",
    "rule_with_operations", "rule",
}

SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool", "int32": "Int32", "int64": "Int64",
           "double": "Double", "uint32": "Int64", "uint64": "Int64", "float": "Double"}


def module_of(path):
    return os.path.relpath(os.path.dirname(path), PB).replace("/", ".")


def resolve(module, rust_path):
    """Turns a prost type path relative to `module` into a full message name."""
    parts = rust_path.split("::")
    mod = module.split(".")
    while parts and parts[0] == "super":
        parts.pop(0)
        mod.pop()
    return ".".join(mod + parts)


def inner_type(ty):
    ty = re.sub(r",?>", ">", re.sub(r"\s+", "", ty))
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<"):
        if ty.startswith(wrapper):
            return ty[len(wrapper):-1]
    m = re.match(r"::prost::alloc::collections::BTreeMap<[^,]+,(.*)>$", ty)
    if m:
        return m.group(1)
    return ty


def parse_pb(path):
    module = module_of(path)
    text = open(path).read()
    text = "\n".join(l for l in text.splitlines() if not l.strip().startswith("///"))
    messages = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
        name, body = m.group(1), m.group(2)
        fields = []
        for f in re.finditer(r"#\[prost\(([^\]]*)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\s*(?=#\[|$)", body, re.S):
            attr, rust_name, ty = f.group(1), f.group(2), f.group(3)
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            head = attr.split(",")[0].strip()
            if head.startswith("btree_map"):
                value = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
                label = "Map"
                kind = value
            else:
                kind = head.split("=")[0].strip()
                label = "Repeated" if "repeated" in attr else "Optional"
            if kind == "message":
                kind = ("Message", resolve(module, inner_type(ty)))
            fields.append((tag, rust_name, label, kind))
        messages[module + "." + name] = fields
    return messages


def openapi_names(module):
    """JSON property names per lowercase struct name of the k8s-openapi twin of `module`."""
    names = {}
    for path in glob.glob(os.path.join(OA, module.replace(".", "/"), "*.rs")):
        text = open(path).read()
        s = re.search(r"pub struct (\w+)", text)
        if not s:
            continue
        props = re.findall(r'"([^"]+)" => Field::Key_', text)
        names[s.group(1).lower()] = props
    return names


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def main():
    messages = {}
    for mod in MODULES:
        messages.update(parse_pb(os.path.join(PB, mod.replace(".", "/"), "mod.rs")))
    oa = {mod: openapi_names(mod) for mod in MODULES}
    unmatched = 0
    out = []
    for full in sorted(messages):
        mod, _, short = full.rpartition(".")
        props = oa.get(mod, {}).get(short.lower(), [])
        by_norm = {norm(p): p for p in props}
        rows = []
        for tag, rust_name, label, kind in sorted(messages[full]):
            json = by_norm.get(norm(rust_name))
            inline = False
            if json is None:
                json = camel(rust_name)
                # Go embeds these structs (`json:",inline"`): their fields sit in the parent.
                inline = rust_name in INLINE and isinstance(kind, tuple)
                if props and not inline:
                    unmatched += 1
                    print(f"warning: {full}.{rust_name} has no k8s-openapi name; using {json}", file=sys.stderr)
            if isinstance(kind, tuple):
                target = kind[1]
                if target not in messages:
                    print(f"warning: {full}.{json} refers to missing {target}", file=sys.stderr)
                k = f'Kind::Message("{target}")'
            else:
                k = "Kind::" + SCALARS[kind]
            if inline:
                lab = "Label::Inline"
            elif label == "Optional":
                keep = json in KEEP_ZERO or f"{short}.{json}" in KEEP_ZERO
                lab = f"Label::Optional {{ keep_zero: {'true' if keep else 'false'} }}"
            else:
                lab = "Label::" + label
            rows.append(f'        Field {{ tag: {tag}, json: "{json}", kind: {k}, label: {lab} }},')
        out.append(f'    ("{full}", &[\n' + "\n".join(rows) + "\n    ]),")
    print("//! Generated by scripts/gen-proto-table.py from k8s-pb 0.9.0 and k8s-openapi 0.29 (v1_34):")
    print("//! the fields of each Kubernetes protobuf message, sorted by message name. Do not edit.")
    print()
    print("use super::schema::{Field, Kind, Label};")
    print()
    print("/// Message full name (k8s-pb module path) → its fields, sorted by name for binary search.")
    print("#[rustfmt::skip]")
    print("pub static MESSAGES: &[(&str, &[Field])] = &[")
    print("\n".join(out))
    print("];")
    print(f"{len(messages)} messages, {unmatched} unmatched names", file=sys.stderr)


if __name__ == "__main__":
    main()
