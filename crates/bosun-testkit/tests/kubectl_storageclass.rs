//! storage.k8s.io/v1 StorageClass with the real kubectl v1.34: discovery, the bootstrap
//! default class `local-path`, apply (create, then an allowed change), get (upstream's
//! columns, `(default)` after the default's name), describe, 422s that name the field
//! (create and immutable fields on update), delete; and the DefaultStorageClass admission
//! giving a claim without `storageClassName` the default class.

use bosun_testkit::{table_header, table_row, TestServer};

const FAST: &str = r#"apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
provisioner: example.com/fast
parameters:
  tier: gold
allowVolumeExpansion: false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_classes_with_kubectl() {
    let s = TestServer::start().await.expect("server starts");

    let res = s.kubectl_ok(&["api-resources", "--api-group=storage.k8s.io"]);
    assert_eq!(
        table_row(&res, "storageclasses"),
        [
            "storageclasses",
            "sc",
            "storage.k8s.io/v1",
            "false",
            "StorageClass"
        ],
        "{res}"
    );

    // The bootstrap class, marked default.
    let table = s.kubectl_ok(&["get", "sc"]);
    assert_eq!(
        table_header(&table),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        &table_row(&table, "local-path")[..6],
        [
            "local-path",
            "(default)",
            "bosun.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ],
        "{table}"
    );

    // apply creates, with upstream's defaults.
    let out = s.kubectl_stdin_ok(&["apply", "-f", "-"], FAST);
    assert_eq!(out.trim(), "storageclass.storage.k8s.io/fast created");
    let table = s.kubectl_ok(&["get", "storageclass", "fast"]);
    assert_eq!(
        &table_row(&table, "fast")[..5],
        ["fast", "example.com/fast", "Delete", "Immediate", "false"],
        "{table}"
    );
    // An allowed change (allowVolumeExpansion) is configured.
    let out = s.kubectl_stdin_ok(
        &["apply", "-f", "-"],
        &FAST.replace("allowVolumeExpansion: false", "allowVolumeExpansion: true"),
    );
    assert_eq!(out.trim(), "storageclass.storage.k8s.io/fast configured");
    let table = s.kubectl_ok(&["get", "sc", "fast"]);
    assert_eq!(table_row(&table, "fast")[4], "true", "{table}");

    let desc = s.kubectl_ok(&["describe", "sc", "fast"]);
    for want in [
        "Name:",
        "fast",
        "example.com/fast",
        "tier",
        "gold",
        "Delete",
    ] {
        assert!(desc.contains(want), "describe lacks {want:?}:\n{desc}");
    }

    // Invalid: 422 naming the field.
    let err = s.kubectl_stdin_err(
        &["create", "-f", "-"],
        &FAST
            .replace("name: fast", "name: bad")
            .replace("provisioner: example.com/fast\n", ""),
    );
    assert!(
        err.contains("is invalid") && err.contains("provisioner: Required value"),
        "{err}"
    );
    let err = s.kubectl_stdin_err(
        &["create", "-f", "-"],
        &format!(
            "{}reclaimPolicy: Recycle\n",
            FAST.replace("name: fast", "name: bad")
        ),
    );
    assert!(
        err.contains("reclaimPolicy: Unsupported value: \"Recycle\""),
        "{err}"
    );
    let err = s.kubectl_stdin_err(
        &["apply", "-f", "-"],
        &format!("{FAST}volumeBindingMode: WaitForFirstConsumer\n"),
    );
    assert!(
        err.contains(
            "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable"
        ),
        "{err}"
    );
    let err = s.kubectl_stdin_err(
        &["apply", "-f", "-"],
        &FAST.replace("tier: gold", "tier: silver"),
    );
    assert!(
        err.contains("parameters: Forbidden: updates to parameters are forbidden."),
        "{err}"
    );

    // DefaultStorageClass admission: no class → the default; "" stays "".
    let claim = |name: &str, class: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n{class}"
        )
    };
    s.kubectl_stdin_ok(&["create", "-f", "-"], &claim("c1", ""));
    s.kubectl_stdin_ok(
        &["create", "-f", "-"],
        &claim("c2", "  storageClassName: \"\"\n"),
    );
    s.kubectl_stdin_ok(
        &["create", "-f", "-"],
        &claim("c3", "  storageClassName: fast\n"),
    );
    let classes = s.kubectl_ok(&[
        "get",
        "pvc",
        "c1",
        "c2",
        "c3",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.storageClassName};{end}",
    ]);
    assert_eq!(classes, "c1=local-path;c2=;c3=fast;");

    // delete.
    let out = s.kubectl_ok(&["delete", "sc", "fast"]);
    assert_eq!(out.trim(), "storageclass.storage.k8s.io \"fast\" deleted");
    let err = s.kubectl_err(&["get", "sc", "fast"]);
    assert!(
        err.contains("storageclasses.storage.k8s.io \"fast\" not found"),
        "{err}"
    );
}
