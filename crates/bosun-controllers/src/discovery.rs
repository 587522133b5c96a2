//! The served resources, from API discovery, cached for a short while: the namespace
//! controller deletes every namespaced kind and the garbage collector watches every kind,
//! including custom resources added later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use parking_lot::Mutex;

use crate::{Error, Result};

/// How long one discovery answer is reused.
const TTL: Duration = Duration::from_secs(30);

/// One served resource (preferred version of its group).
#[derive(Clone, Debug)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Served {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// A cached view of discovery.
pub struct Catalog {
    client: Client,
    cached: Mutex<Option<(Instant, Arc<Vec<Served>>)>>,
}

impl Catalog {
    pub fn new(client: Client) -> Catalog {
        Catalog {
            client,
            cached: Mutex::new(None),
        }
    }

    /// The served resources, at most `TTL` old.
    pub async fn resources(&self) -> Result<Arc<Vec<Served>>> {
        if let Some((at, r)) = self.cached.lock().as_ref() {
            if at.elapsed() < TTL {
                return Ok(r.clone());
            }
        }
        self.refresh().await
    }

    /// Discovers again now.
    pub async fn refresh(&self) -> Result<Arc<Vec<Served>>> {
        let d = match Discovery::new(self.client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(_) => Discovery::new(self.client.clone())
                .run()
                .await
                .map_err(Error::Discovery)?,
        };
        let mut out = Vec::new();
        for g in d.groups() {
            for (ar, caps) in g.recommended_resources() {
                out.push(served(ar, &caps));
            }
        }
        let out = Arc::new(out);
        *self.cached.lock() = Some((Instant::now(), out.clone()));
        Ok(out)
    }
}

fn served(resource: ApiResource, caps: &ApiCapabilities) -> Served {
    Served {
        resource,
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations.clone(),
    }
}

pub use verbs::{DELETE, DELETE_COLLECTION, LIST, WATCH};
