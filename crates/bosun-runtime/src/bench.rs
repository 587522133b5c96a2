//! The container lifecycle benchmark behind `bosun bench pods`: create + start + stop +
//! delete of a container running `true`, median over `n`, and the same lifecycle with `crun`
//! (or `runc`) from Debian on an OCI bundle of the same image, in the same run, for a ratio.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::spec::{ContainerSpec, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};

/// Figures of one lifecycle benchmark, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleFigures {
    pub runtime: String,
    pub n: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    /// Median of each step (bosun's runtime only: create, start, wait, delete), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepFigure>,
}

/// The median of one step of the lifecycle, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct StepFigure {
    pub step: &'static str,
    pub median_ms: f64,
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn figures(runtime: &str, mut samples: Vec<Duration>) -> LifecycleFigures {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    LifecycleFigures {
        runtime: runtime.to_owned(),
        n,
        median_ms: samples.get(n / 2).map(|d| ms(*d)).unwrap_or(0.0),
        p90_ms: samples.get(n * 9 / 10).map(|d| ms(*d)).unwrap_or(0.0),
        min_ms: samples.first().map(|d| ms(*d)).unwrap_or(0.0),
        steps: Vec::new(),
    }
}

/// create + start + wait for exit + delete of `true` in `image`, `n` times.
pub fn bench_lifecycle(rt: &Runtime, image: &str, n: usize) -> Result<LifecycleFigures> {
    const STEPS: [&str; 4] = ["create", "start", "wait", "delete"];
    let mut samples = Vec::with_capacity(n);
    let mut steps: [Vec<Duration>; 4] = Default::default();
    for i in 0..n {
        let id = format!("bench-{}-{i}", std::process::id());
        let spec = ContainerSpec {
            id: id.clone(),
            image: image.to_owned(),
            command: Some(vec!["true".into()]),
            ..Default::default()
        };
        let t0 = Instant::now();
        rt.create(&spec)?;
        let t1 = Instant::now();
        rt.start(&id)?;
        let t2 = Instant::now();
        rt.wait(&id, Duration::from_secs(30))?;
        let t3 = Instant::now();
        rt.delete(&id, true)?;
        let t4 = Instant::now();
        samples.push(t4 - t0);
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)]
            .into_iter()
            .enumerate()
        {
            steps[k].push(b - a);
        }
    }
    let mut f = figures("bosun", samples);
    f.steps = STEPS
        .into_iter()
        .zip(steps)
        .map(|(step, v)| StepFigure {
            step,
            median_ms: median_ms(v),
        })
        .collect();
    Ok(f)
}

/// `crun` or `runc` if one is installed.
pub fn find_oci_runtime() -> Option<PathBuf> {
    for name in ["crun", "runc"] {
        for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Writes an OCI runtime bundle (`config.json`, rootfs = the image's layers copied flat)
/// with the settings bosun applies: same namespaces, mounts, masks and capabilities.
pub fn write_bundle(rt: &Runtime, image: &str, bundle: &Path) -> Result<()> {
    let img = rt.images().resolve(image)?;
    let rootfs = bundle.join("rootfs");
    crate::fsutil::create_dir_all(&rootfs)?;
    for layer in &img.layer_dirs {
        // A plain copy is enough for single-layer test images (no whiteouts to apply).
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", layer.display()))
            .arg(&rootfs)
            .status()
            .map_err(Error::io("run cp for", &rootfs))?;
        if !st.success() {
            return Err(Error::Other(format!(
                "copy {} into the bundle failed",
                layer.display()
            )));
        }
    }
    let caps: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS
        }
    });
    crate::fsutil::write_json(&bundle.join("config.json"), &config)
}

/// `crun run` (create + start + wait + delete) on `bundle`, `n` times. Both sides run without
/// a cgroup, so the figures compare namespace, mount and process set-up.
pub fn bench_oci_runtime(program: &Path, bundle: &Path, n: usize) -> Result<LifecycleFigures> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("bosun-bench-{}-{i}", std::process::id());
        let t0 = Instant::now();
        let mut cmd = Command::new(program);
        if program.ends_with("crun") {
            // Like bosun's container here, no cgroup (crun 1.8 also refuses hybrid v1/v2).
            cmd.arg("--cgroup-manager=disabled");
        }
        let st = cmd
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(Error::io("run", program))?;
        samples.push(t0.elapsed());
        if !st.status.success() {
            let _ = Command::new(program).args(["delete", "-f", &id]).output();
            return Err(Error::Other(format!(
                "{} run failed: {}",
                program.display(),
                String::from_utf8_lossy(&st.stderr).trim()
            )));
        }
    }
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(figures(&name, samples))
}
