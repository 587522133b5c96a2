//! Pod volumes under `DATA_DIR/pods/<uid>/volumes/<name>`: emptyDir (disk, or tmpfs for
//! `medium: Memory`), hostPath (with its type checks), configMap and secret (secret on tmpfs;
//! items, modes), downwardAPI and projected (configMap, secret, downwardAPI sources), and
//! persistentVolumeClaim bound to a hostPath or local PersistentVolume (the claim's volume
//! directory itself, bind-mounted). Files are rewritten on every refresh so updates
//! propagate. Containers get bind mounts.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use bosun_runtime::spec::Mount;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::api::Api;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::envvars;

/// Why a volume could not be set up (upstream reports `FailedMount` with this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumeError(pub String);

/// Host paths of the pod's volumes, by volume name, and which volumes every mount of
/// them must make read-only (`persistentVolumeClaim.readOnly`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Volumes {
    paths: HashMap<String, PathBuf>,
    read_only: HashSet<String>,
}

impl Volumes {
    pub(crate) fn new() -> Volumes {
        Volumes::default()
    }

    fn insert(&mut self, name: String, path: PathBuf) {
        self.paths.insert(name, path);
    }

    fn get(&self, name: &str) -> Option<&PathBuf> {
        self.paths.get(name)
    }
}

fn err(e: impl std::fmt::Display) -> VolumeError {
    VolumeError(e.to_string())
}

fn safe_rel(p: &str) -> Result<PathBuf, VolumeError> {
    let path = Path::new(p);
    if path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(VolumeError(format!(
            "invalid path {p:?}: must be relative and may not contain '..'"
        )));
    }
    Ok(path.to_path_buf())
}

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: i32) -> Result<(), VolumeError> {
    let target = dir.join(safe_rel(rel)?);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| err(format!("create {}: {e}", parent.display())))?;
    }
    let tmp = target.with_extension("bosun-tmp");
    std::fs::write(&tmp, data).map_err(|e| err(format!("write {}: {e}", tmp.display())))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode as u32 & 0o7777))
        .map_err(|e| err(format!("chmod {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &target).map_err(|e| err(format!("rename {}: {e}", target.display())))
}

fn is_mountpoint(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let d = dir.to_string_lossy();
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(d.as_ref()))
}

fn tmpfs(dir: &Path, size: Option<String>) -> Result<(), VolumeError> {
    if is_mountpoint(dir) {
        return Ok(());
    }
    let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()).filter(|o| !o.is_empty()),
    )
    .map_err(|e| err(format!("mount tmpfs on {}: {e}", dir.display())))
}

/// The files of a key→value map with optional items (configMap and secret volumes).
fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<KeyToPath>>,
    default_mode: i32,
    what: &str,
) -> Result<Vec<(String, Vec<u8>, i32)>, VolumeError> {
    match items {
        None => Ok(data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), default_mode))
            .collect()),
        Some(items) => items
            .iter()
            .map(|i| match data.get(&i.key) {
                Some(v) => Ok((i.path.clone(), v.clone(), i.mode.unwrap_or(default_mode))),
                None => Err(VolumeError(format!(
                    "configmap references non-existent config key: {} ({what})",
                    i.key
                ))),
            })
            .collect(),
    }
}

fn cm_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut m: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        m.insert(k.clone(), v.0.clone());
    }
    m
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    host_ip: &str,
    allocatable: &BTreeMap<String, String>,
) -> Result<Vec<(String, Vec<u8>, i32)>, VolumeError> {
    let mut out = Vec::new();
    for i in items {
        let value = if let Some(f) = &i.field_ref {
            envvars::field_ref(pod, &f.field_path, host_ip, None).map_err(|e| VolumeError(e.0))?
        } else if let Some(r) = &i.resource_field_ref {
            let spec = pod.spec.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                .or(spec.containers.first())
                .cloned()
                .unwrap_or_default();
            envvars::resource_field_ref(
                &c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                allocatable,
            )
            .map_err(|e| VolumeError(e.0))?
        } else {
            String::new()
        };
        out.push((
            i.path.clone(),
            value.into_bytes(),
            i.mode.unwrap_or(default_mode),
        ));
    }
    Ok(out)
}

/// A hostPath (pod volume or PersistentVolume) after upstream's type checks; the
/// `...OrCreate` types create what is missing.
fn host_path(path: &str, ty: &str) -> Result<PathBuf, VolumeError> {
    let p = PathBuf::from(path);
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(VolumeError(format!(
                "hostPath type check failed: {path} is not a {what}"
            )))
        }
    };
    match ty {
        "DirectoryOrCreate" if !p.is_dir() => {
            std::fs::create_dir_all(&p).map_err(|e| err(format!("create {}: {e}", p.display())))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).ok();
        }
        "Directory" => check(p.is_dir(), "directory")?,
        "FileOrCreate" if !p.exists() => {
            std::fs::write(&p, b"").map_err(|e| err(format!("create {}: {e}", p.display())))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).ok();
        }
        "File" => check(p.is_file(), "file")?,
        "Socket" | "CharDevice" | "BlockDevice" => check(p.exists(), ty)?,
        _ => {}
    }
    Ok(p)
}

/// The host directory behind a persistentVolumeClaim volume: the claim must be bound, and
/// its PersistentVolume a hostPath or local volume (what a single node can offer; bosun's
/// local-path provisioner makes hostPath volumes).
async fn claim_path(client: &kube::Client, ns: &str, claim: &str) -> Result<PathBuf, VolumeError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let Some(pvc) = claims.get_opt(claim).await.map_err(err)? else {
        return Err(VolumeError(format!(
            "persistentvolumeclaim \"{claim}\" not found"
        )));
    };
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || volume.is_empty() {
        // Upstream's volume manager message.
        return Err(VolumeError(format!(
            "PVC {ns}/{claim} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume:?})"
        )));
    }
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let Some(pv) = pvs.get_opt(&volume).await.map_err(err)? else {
        return Err(VolumeError(format!(
            "persistentvolume \"{volume}\" not found"
        )));
    };
    let spec = pv.spec.unwrap_or_default();
    if let Some(hp) = &spec.host_path {
        return host_path(&hp.path, hp.type_.as_deref().unwrap_or(""));
    }
    if let Some(l) = &spec.local {
        let p = PathBuf::from(&l.path);
        if !p.is_dir() {
            return Err(VolumeError(format!(
                "local volume {volume}: path {:?} does not exist on this node",
                l.path
            )));
        }
        return Ok(p);
    }
    Err(VolumeError(format!(
        "persistentvolume {volume:?}: only hostPath and local volumes are supported by bosun"
    )))
}

/// Sets up (or refreshes) every volume of the pod.
pub(crate) async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
    host_ip: &str,
    allocatable: &BTreeMap<String, String>,
) -> Result<Volumes, VolumeError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = Volumes::new();
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in volumes {
        let dir = pod_dir.join("volumes").join(&v.name);
        if let Some(hp) = &v.host_path {
            let p = host_path(&hp.path, hp.type_.as_deref().unwrap_or(""))?;
            out.insert(v.name.clone(), p);
            continue;
        }
        if let Some(pvc) = &v.persistent_volume_claim {
            let p = claim_path(client, ns, &pvc.claim_name).await?;
            if pvc.read_only == Some(true) {
                out.read_only.insert(v.name.clone());
            }
            out.insert(v.name.clone(), p);
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("create {}: {e}", dir.display())))?;
        let mut files: Vec<(String, Vec<u8>, i32)> = Vec::new();
        if let Some(ed) = &v.empty_dir {
            if ed.medium.as_deref() == Some("Memory") {
                tmpfs(&dir, ed.size_limit.as_ref().map(|q| q.0.clone()))?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).ok();
        } else if let Some(c) = &v.config_map {
            let mode = c.default_mode.unwrap_or(0o644);
            match cms.get_opt(&c.name).await.map_err(err)? {
                Some(cm) => files = key_files(&cm_data(&cm), &c.items, mode, &c.name)?,
                None if c.optional == Some(true) => {}
                None => return Err(VolumeError(format!("configmap \"{}\" not found", c.name))),
            }
        } else if let Some(s) = &v.secret {
            tmpfs(&dir, None)?;
            let name = s.secret_name.clone().unwrap_or_default();
            let mode = s.default_mode.unwrap_or(0o644);
            match secrets.get_opt(&name).await.map_err(err)? {
                Some(sec) => files = key_files(&secret_data(&sec), &s.items, mode, &name)?,
                None if s.optional == Some(true) => {}
                None => return Err(VolumeError(format!("secret \"{name}\" not found"))),
            }
        } else if let Some(d) = &v.downward_api {
            files = downward_files(
                pod,
                d.items.as_deref().unwrap_or_default(),
                d.default_mode.unwrap_or(0o644),
                host_ip,
                allocatable,
            )?;
        } else if let Some(p) = &v.projected {
            let mode = p.default_mode.unwrap_or(0o644);
            for src in p.sources.iter().flatten() {
                if let Some(c) = &src.config_map {
                    match cms.get_opt(&c.name).await.map_err(err)? {
                        Some(cm) => {
                            files.extend(key_files(&cm_data(&cm), &c.items, mode, &c.name)?)
                        }
                        None if c.optional == Some(true) => {}
                        None => {
                            return Err(VolumeError(format!("configmap \"{}\" not found", c.name)))
                        }
                    }
                }
                if let Some(s) = &src.secret {
                    match secrets.get_opt(&s.name).await.map_err(err)? {
                        Some(sec) => {
                            files.extend(key_files(&secret_data(&sec), &s.items, mode, &s.name)?)
                        }
                        None if s.optional == Some(true) => {}
                        None => {
                            return Err(VolumeError(format!("secret \"{}\" not found", s.name)))
                        }
                    }
                }
                if let Some(d) = &src.downward_api {
                    files.extend(downward_files(
                        pod,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                        host_ip,
                        allocatable,
                    )?);
                }
            }
        } else {
            return Err(VolumeError(format!(
                "volume {:?}: this volume type is not supported by bosun yet",
                v.name
            )));
        }
        for (rel, data, mode) in files {
            write_file(&dir, &rel, &data, mode)?;
        }
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// The bind mounts of one container: its volumeMounts (with subPath), plus the pod's
/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
pub(crate) fn container_mounts(
    c: &Container,
    volumes: &Volumes,
    pod_dir: &Path,
) -> Result<Vec<Mount>, VolumeError> {
    let mut out = Vec::new();
    for f in ["hosts", "hostname", "resolv.conf"] {
        if c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == format!("/etc/{f}"))
        {
            continue;
        }
        out.push(Mount {
            source: pod_dir.join("etc").join(f),
            destination: format!("/etc/{f}"),
            readonly: false,
        });
    }
    for m in c.volume_mounts.iter().flatten() {
        let Some(src) = volumes.get(&m.name) else {
            return Err(VolumeError(format!(
                "volumeMount {:?}: no volume of that name",
                m.name
            )));
        };
        let mut source = src.clone();
        if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            source = source.join(safe_rel(sp)?);
            if !source.exists() {
                std::fs::create_dir_all(&source)
                    .map_err(|e| err(format!("create {}: {e}", source.display())))?;
            }
            // No symlink may lead the subPath out of its volume.
            let real = source
                .canonicalize()
                .map_err(|e| err(format!("resolve {}: {e}", source.display())))?;
            let base = src
                .canonicalize()
                .map_err(|e| err(format!("resolve {}: {e}", src.display())))?;
            if !real.starts_with(&base) {
                return Err(VolumeError(format!(
                    "subPath {sp:?} escapes its volume {:?}",
                    m.name
                )));
            }
            source = real;
        }
        out.push(Mount {
            source,
            destination: m.mount_path.clone(),
            readonly: m.read_only.unwrap_or(false) || volumes.read_only.contains(&m.name),
        });
    }
    Ok(out)
}

/// Writes the pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
pub(crate) fn write_etc(
    pod: &Pod,
    pod_dir: &Path,
    hostname: &str,
    pod_ip: Option<&str>,
    cluster_dns: &[String],
    cluster_domain: &str,
) -> Result<(), VolumeError> {
    let dir = pod_dir.join("etc");
    std::fs::create_dir_all(&dir).map_err(|e| err(format!("create {}: {e}", dir.display())))?;
    let mut hosts = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    for ha in pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.clone())
        .unwrap_or_default()
    {
        hosts.push_str(&format!(
            "{}\t{}\n",
            ha.ip,
            ha.hostnames.unwrap_or_default().join("\t")
        ));
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.clone().unwrap_or_default();
    // The pod's own name, as upstream's managed hosts file (FQDN first with a subdomain).
    if let Some(ip) = pod_ip {
        match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => hosts.push_str(&format!(
                "{ip}\t{hostname}.{sub}.{ns}.svc.{cluster_domain}\t{hostname}\n"
            )),
            None => hosts.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    let dns: Vec<std::net::IpAddr> = cluster_dns.iter().filter_map(|s| s.parse().ok()).collect();
    let node_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv =
        bosun_net::dns::resolv::pod_resolv_conf(&spec, ns, &dns, cluster_domain, &node_resolv);
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ] {
        write_file(&dir, name, text.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Unmounts the pod's tmpfs volumes; the caller removes the directory.
pub(crate) fn teardown(pod_dir: &Path) {
    let vols = pod_dir.join("volumes");
    if let Ok(rd) = std::fs::read_dir(&vols) {
        for e in rd.flatten() {
            let p = e.path();
            if is_mountpoint(&p) {
                let _ = umount2(&p, MntFlags::MNT_DETACH);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_claims_make_every_mount_read_only() {
        let mut vols = Volumes::new();
        vols.insert("ro".into(), PathBuf::from("/x/ro"));
        vols.insert("rw".into(), PathBuf::from("/x/rw"));
        vols.read_only.insert("ro".into());
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [{"name": "ro", "mountPath": "/a"}, {"name": "rw", "mountPath": "/b"},
                             {"name": "rw", "mountPath": "/c", "readOnly": true}],
        }))
        .expect("container");
        let mounts = container_mounts(&c, &vols, Path::new("/pod")).expect("mounts");
        let ro: Vec<(&str, bool)> = mounts
            .iter()
            .filter(|m| !m.destination.starts_with("/etc/"))
            .map(|m| (m.destination.as_str(), m.readonly))
            .collect();
        assert_eq!(ro, vec![("/a", true), ("/b", false), ("/c", true)]);
    }

    #[test]
    fn host_path_types() {
        let tmp = std::env::temp_dir().join(format!("bosun-hp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let d = tmp.join("made/here");
        let ds = d.to_string_lossy().to_string();
        assert!(host_path(&ds, "Directory").is_err());
        assert_eq!(host_path(&ds, "DirectoryOrCreate"), Ok(d.clone()));
        assert!(d.is_dir());
        assert!(host_path(&ds, "Directory").is_ok());
        assert!(host_path(&ds, "File").is_err());
        let f = tmp.join("f");
        assert!(host_path(&f.to_string_lossy(), "FileOrCreate").is_ok());
        assert!(f.is_file());
        assert!(host_path(&f.to_string_lossy(), "File").is_ok());
        assert!(
            host_path("/nonexistent/bosun-x", "").is_ok(),
            "no type: no check"
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn sub_paths_must_stay_inside() {
        assert!(safe_rel("a/b").is_ok());
        assert!(safe_rel("../x").is_err());
        assert!(safe_rel("/etc").is_err());
    }

    #[test]
    fn items_pick_keys_and_modes() {
        let mut data = BTreeMap::new();
        data.insert("a".to_string(), b"1".to_vec());
        data.insert("b".to_string(), b"2".to_vec());
        let all = key_files(&data, &None, 0o644, "x").unwrap();
        assert_eq!(all.len(), 2);
        let items = Some(vec![KeyToPath {
            key: "b".into(),
            path: "dir/b.txt".into(),
            mode: Some(0o600),
        }]);
        let some = key_files(&data, &items, 0o644, "x").unwrap();
        assert_eq!(some, vec![("dir/b.txt".to_string(), b"2".to_vec(), 0o600)]);
        let bad = Some(vec![KeyToPath {
            key: "zz".into(),
            path: "z".into(),
            mode: None,
        }]);
        assert!(key_files(&data, &bad, 0o644, "x").is_err());
    }
}
