//! Image garbage collection under disk pressure, as upstream's image GC manager
//! (pkg/kubelet/images/image_gc_manager.go): every `period` (5 min) the image filesystem's use
//! (here the data directory's filesystem, which holds images and containers alike) is compared
//! with `imageGCHighThresholdPercent` (85); above it, images no container uses are removed,
//! least recently used first (an image never used since the agent started counts from when
//! it was first seen), skipping images first seen less than `imageMinimumGCAge` (2 min) ago,
//! until the estimated use is below `imageGCLowThresholdPercent` (80). Every tag of a removed
//! image goes, then the store collects the unreferenced blobs and layers.
//!
//! Events on the Node: `ImageGCFreed` (Normal; bosun's, upstream only logs) naming what was
//! removed, and upstream's `FreeDiskSpaceFailed` (Warning) when unused images cannot free
//! enough.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Ctx;

/// Image GC settings (upstream's KubeletConfiguration defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    /// `imageGCHighThresholdPercent`: 85. 100 turns image GC off, as upstream.
    pub high_threshold_percent: u8,
    /// `imageGCLowThresholdPercent`: 80.
    pub low_threshold_percent: u8,
    /// `imageMinimumGCAge`: 2 min.
    pub min_age: Duration,
    /// How often usage is checked (upstream's `ImageGCPeriod`, 5 min).
    pub period: Duration,
}

impl Default for ImageGcPolicy {
    fn default() -> Self {
        ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            period: Duration::from_secs(300),
        }
    }
}

impl ImageGcPolicy {
    /// Upstream's validation: both in 0..=100, low below high (unless GC is off).
    pub fn validate(&self) -> Result<(), String> {
        if self.high_threshold_percent > 100 || self.low_threshold_percent > 100 {
            return Err("image GC thresholds are percentages (0 to 100)".into());
        }
        if self.high_threshold_percent < 100
            && self.low_threshold_percent >= self.high_threshold_percent
        {
            return Err(format!(
                "imageGCLowThresholdPercent ({}) must be below imageGCHighThresholdPercent ({})",
                self.low_threshold_percent, self.high_threshold_percent
            ));
        }
        Ok(())
    }
}

/// One image (by image ID, all its tags) as the collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: String,
    pub references: Vec<String>,
    pub size: u64,
    pub first_seen: Instant,
    pub last_used: Instant,
}

/// What to remove: bytes to free (0 when under the high threshold) and the chosen images,
/// oldest used first; and whether they are enough.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan<'a> {
    pub to_free: u64,
    pub images: Vec<&'a Record>,
    pub enough: bool,
}

/// Upstream's decision: above the high threshold, free `capacity × (100 − low)% − available`
/// bytes from unused images old enough, least recently used first.
pub(crate) fn plan<'a>(
    images: &'a [Record],
    in_use: &HashSet<String>,
    capacity: u64,
    available: u64,
    policy: &ImageGcPolicy,
    now: Instant,
) -> Plan<'a> {
    let none = Plan {
        to_free: 0,
        images: Vec::new(),
        enough: true,
    };
    if capacity == 0 || policy.high_threshold_percent >= 100 {
        return none;
    }
    let used_percent = 100 - (available.min(capacity) as u128 * 100 / capacity as u128) as u64;
    if used_percent < u64::from(policy.high_threshold_percent) {
        return none;
    }
    let target_available =
        (capacity as u128 * u128::from(100 - policy.low_threshold_percent) / 100) as u64;
    let to_free = target_available.saturating_sub(available);
    if to_free == 0 {
        return none;
    }
    let mut candidates: Vec<&Record> = images
        .iter()
        .filter(|r| !in_use.contains(&r.id))
        .filter(|r| now.saturating_duration_since(r.first_seen) >= policy.min_age)
        .collect();
    candidates.sort_by_key(|r| (r.last_used, r.first_seen));
    let mut freed = 0u64;
    let mut chosen = Vec::new();
    for r in candidates {
        if freed >= to_free {
            break;
        }
        freed = freed.saturating_add(r.size);
        chosen.push(r);
    }
    Plan {
        to_free,
        enough: freed >= to_free,
        images: chosen,
    }
}

/// First-seen and last-used times of the images, kept across passes.
#[derive(Debug, Default)]
struct Tracker {
    seen: HashMap<String, (Instant, Instant)>,
}

impl Tracker {
    /// The store's images grouped by ID, with in-use images marked used now.
    fn update(
        &mut self,
        infos: &[bosun_runtime::image::ImageInfo],
        in_use: &HashSet<String>,
        now: Instant,
    ) -> Vec<Record> {
        let mut by_id: BTreeMap<String, (Vec<String>, u64)> = BTreeMap::new();
        for i in infos {
            let e = by_id.entry(i.config_digest.clone()).or_default();
            e.0.push(i.reference.clone());
            e.1 = e.1.max(i.size);
        }
        self.seen.retain(|id, _| by_id.contains_key(id));
        by_id
            .into_iter()
            .map(|(id, (references, size))| {
                let t = self.seen.entry(id.clone()).or_insert((now, now));
                if in_use.contains(&id) {
                    t.1 = now;
                }
                Record {
                    id,
                    references,
                    size,
                    first_seen: t.0,
                    last_used: t.1,
                }
            })
            .collect()
    }
}

/// Image IDs that a container (running or not) uses: those cannot go.
fn images_in_use(rt: &bosun_runtime::Runtime) -> HashSet<String> {
    rt.list()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| rt.config(&c.id).ok())
        .map(|c| c.image_id)
        .collect()
}

/// The collection loop of the agent.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let policy = ctx.cfg.image_gc;
    if policy.high_threshold_percent >= 100 {
        return std::future::pending().await;
    }
    let mut tracker = Tracker::default();
    loop {
        tokio::time::sleep(policy.period).await;
        let Some(summary) = ctx.stats.latest() else {
            continue;
        };
        let fs = summary.node.fs.clone();
        let rt = ctx.runtime.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let in_use = images_in_use(&rt);
            rt.images().list().map(|l| (l, in_use))
        })
        .await;
        let (infos, in_use) = match listed {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "image GC: listing images");
                continue;
            }
            Err(_) => continue,
        };
        let now = Instant::now();
        let records = tracker.update(&infos, &in_use, now);
        let p = plan(
            &records,
            &in_use,
            fs.capacity_bytes,
            fs.available_bytes,
            &policy,
            now,
        );
        if p.to_free == 0 {
            continue;
        }
        let chosen: Vec<Record> = p.images.iter().map(|r| (*r).clone()).collect();
        let (to_free, enough) = (p.to_free, p.enough);
        let rt = ctx.runtime.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let mut removed = Vec::new();
            let mut estimate = 0u64;
            for r in &chosen {
                let mut all = true;
                for reference in &r.references {
                    if let Err(e) = rt.images().remove(reference) {
                        tracing::warn!(image = %reference, error = %e, "image GC: removing");
                        all = false;
                    }
                }
                if all {
                    estimate += r.size;
                    removed.push(r.references.join(", "));
                }
            }
            let freed = match rt.images().gc() {
                Ok(s) => s.bytes_freed,
                Err(e) => {
                    tracing::warn!(error = %e, "image GC: collecting blobs");
                    estimate
                }
            };
            (removed, freed)
        })
        .await;
        let Ok((removed, freed)) = removed else {
            continue;
        };
        let used = 100 - fs.available_bytes.saturating_mul(100) / fs.capacity_bytes.max(1);
        if !removed.is_empty() {
            crate::eviction::node_event_of_type(
                &ctx,
                "Normal",
                "ImageGCFreed",
                format!(
                    "Disk usage {used}% is at or above the image GC high threshold ({}%): removed unused images {} ({freed} bytes)",
                    policy.high_threshold_percent,
                    removed.join("; ")
                ),
            );
        }
        if !enough {
            let eligible: u64 = records
                .iter()
                .filter(|r| !in_use.contains(&r.id))
                .map(|r| r.size)
                .sum();
            crate::eviction::node_event_of_type(
                &ctx,
                "Warning",
                "FreeDiskSpaceFailed",
                format!(
                    "Failed to garbage collect required amount of images. Attempted to free {to_free} bytes, but only found {eligible} bytes eligible to free."
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, size: u64, first: Instant, used: Instant) -> Record {
        Record {
            id: id.into(),
            references: vec![format!("example.com/{id}:latest")],
            size,
            first_seen: first,
            last_used: used,
        }
    }

    #[test]
    fn nothing_below_the_high_threshold() {
        let t0 = Instant::now();
        let images = [rec("a", 100, t0, t0)];
        let policy = ImageGcPolicy {
            min_age: Duration::ZERO,
            ..Default::default()
        };
        // 84 % used.
        let p = plan(&images, &HashSet::new(), 1000, 160, &policy, t0);
        assert_eq!(p.to_free, 0);
        assert!(p.images.is_empty());
    }

    #[test]
    fn frees_down_to_the_low_threshold_least_recently_used_first() {
        let t0 = Instant::now();
        let t = |s: u64| t0 + Duration::from_secs(s);
        let images = [
            rec("new", 30, t(0), t(50)),
            rec("old", 30, t(0), t(10)),
            rec("used", 500, t(0), t(0)),
            rec("young", 500, t(95), t(95)),
            rec("middle", 30, t(0), t(20)),
        ];
        let in_use: HashSet<String> = ["used".to_string()].into();
        let policy = ImageGcPolicy {
            min_age: Duration::from_secs(10),
            ..Default::default()
        };
        // 90 % used of 1000: free 200 − 100 = 100 bytes to get to 80 %.
        let p = plan(&images, &in_use, 1000, 100, &policy, t(100));
        assert_eq!(p.to_free, 100);
        let ids: Vec<&str> = p.images.iter().map(|r| r.id.as_str()).collect();
        // In use and too young are never chosen; 3 × 30 < 100, so not enough.
        assert_eq!(ids, ["old", "middle", "new"]);
        assert!(!p.enough);

        let p = plan(&images, &in_use, 1000, 140, &policy, t(100));
        assert_eq!(p.to_free, 60);
        let ids: Vec<&str> = p.images.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["old", "middle"]);
        assert!(p.enough);
    }

    #[test]
    fn off_at_100_and_validated() {
        let t0 = Instant::now();
        let images = [rec("a", 100, t0, t0)];
        let off = ImageGcPolicy {
            high_threshold_percent: 100,
            ..Default::default()
        };
        assert_eq!(plan(&images, &HashSet::new(), 1000, 0, &off, t0).to_free, 0);
        assert!(off.validate().is_ok());
        let bad = ImageGcPolicy {
            high_threshold_percent: 80,
            low_threshold_percent: 85,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(ImageGcPolicy::default().validate().is_ok());
    }

    #[test]
    fn tracker_groups_tags_and_marks_use() {
        let info = |r: &str, id: &str| bosun_runtime::image::ImageInfo {
            reference: r.into(),
            manifest_digest: format!("m-{id}"),
            config_digest: id.into(),
            size: 10,
        };
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let infos = [info("a:1", "x"), info("a:2", "x"), info("b:1", "y")];
        let r = t.update(&infos, &HashSet::new(), t0);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].references, ["a:1", "a:2"]);
        let later = t0 + Duration::from_secs(5);
        let r = t.update(&infos, &["y".to_string()].into(), later);
        assert_eq!(r[0].last_used, t0, "x unused: first seen");
        assert_eq!(r[1].last_used, later, "y in use now");
        assert_eq!(r[1].first_seen, t0);
    }
}
