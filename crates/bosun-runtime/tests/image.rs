//! Image store: imports of the busybox test image as OCI archive, OCI layout and docker save.
mod common;

use bosun_runtime::image::ImageStore;
use common::*;

#[test]
fn import_oci_archive_docker_archive_and_layout() {
    require_root();
    let images = images_dir();
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();

    let oci = store.import(&images.join("busybox.oci.tar"), None).unwrap();
    assert_eq!(oci.len(), 1);
    assert_eq!(oci[0].reference, BUSYBOX);

    // docker save of the same content: same config (image ID), same unpacked layer.
    let docker = store
        .import(
            &images.join("busybox.docker.tar"),
            Some("bosun.test/busybox:docker"),
        )
        .unwrap();
    assert_eq!(docker[0].config_digest, oci[0].config_digest);
    let layers = std::fs::read_dir(store.root().join("layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1, "one layer unpacked once and shared");

    // An OCI layout directory.
    let layout = tempfile::tempdir().unwrap();
    let f = std::fs::File::open(images.join("busybox.oci.tar")).unwrap();
    tar::Archive::new(f).unpack(layout.path()).unwrap();
    let dir = store.import(layout.path(), Some("busybox:dir")).unwrap();
    assert_eq!(dir[0].reference, "docker.io/library/busybox:dir");

    let mut refs: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.reference)
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        vec![
            "bosun.test/busybox:docker".to_owned(),
            BUSYBOX.into(),
            "docker.io/library/busybox:dir".into()
        ]
    );

    let img = store.resolve("bosun.test/busybox").unwrap();
    assert!(img.layer_dirs[0].join("bin/busybox").is_file());
    assert!(img.layer_dirs[0]
        .join("bin/sh")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    // By image ID prefix as well.
    let short = &oci[0].config_digest["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        store.resolve(short).unwrap().config_digest,
        oci[0].config_digest
    );

    // Importing again is a no-op that keeps everything.
    store.import(&images.join("busybox.oci.tar"), None).unwrap();

    // Remove all references, then gc frees blobs and layers.
    for r in refs {
        store.remove(&r).unwrap();
    }
    assert!(store.list().unwrap().is_empty());
    let stats = store.gc().unwrap();
    assert!(
        stats.blobs_removed >= 3 && stats.layers_removed == 1,
        "{stats:?}"
    );
    assert!(matches!(
        store.resolve(BUSYBOX),
        Err(bosun_runtime::Error::ImageNotFound(_))
    ));
}
