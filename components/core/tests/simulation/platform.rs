//! The platform a simulated request sees. Every store operation, outbound call and pause
//! suspends the request's coroutine, so the scheduler decides what happens next: another
//! request runs, the operation fails, the process dies, or time passes.

use std::rc::Rc;
use std::time::Duration;

use corosensei::Yielder;
use topup_core::platform::{
    Clock, HttpClient, KeyValue, OutboundRequest, OutboundResponse, Platform, Random, StoreError,
    TransportError, VariableError, Variables,
};

use crate::world::World;

/// Why a request suspended.
pub enum Yield {
    /// About to run a store operation.
    Store {
        /// `default` or `claims`.
        label: &'static str,
        /// Operation name.
        op: &'static str,
        /// The (first) key.
        key: String,
    },
    /// Sending outbound calls.
    Http(Vec<OutboundRequest>),
    /// Pausing.
    Sleep(Duration),
}

/// What the scheduler lets a suspended request do.
pub enum Resume {
    /// Go on (for a store operation: run it).
    Go,
    /// The store operation fails; `applied` when it took effect before failing (a reply lost
    /// after the write, as with a dropped Redis connection).
    Fail {
        /// Whether the operation was applied anyway.
        applied: bool,
    },
    /// The outbound calls' results.
    Http(Vec<Result<OutboundResponse, TransportError>>),
}

/// The coroutine's channel to the scheduler.
pub type Channel = Yielder<Resume, Yield>;

/// One labelled store, as a request sees it.
pub struct SimStore<'y> {
    label: &'static str,
    world: Rc<World>,
    channel: &'y Channel,
}

impl SimStore<'_> {
    fn store(&self) -> &dyn KeyValue {
        if self.label == "default" {
            &self.world.records
        } else {
            &self.world.claims
        }
    }

    fn run<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&dyn KeyValue) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let resume = self.channel.suspend(Yield::Store {
            label: self.label,
            op,
            key: key.to_string(),
        });
        match resume {
            Resume::Fail { applied } => {
                if applied {
                    let _ = f(self.store());
                }
                Err(StoreError::Other("injected store failure".into()))
            }
            Resume::Go | Resume::Http(_) => f(self.store()),
        }
    }
}

impl KeyValue for SimStore<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("get", key, |s| s.get(key))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.run("set", key, |s| s.set(key, value))
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let first = entries.first().map_or("", |(k, _)| k.as_str());
        self.run("set_many", first, |s| s.set_many(entries))
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run("delete", key, |s| s.delete(key))
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let first = keys.first().map_or("", String::as_str);
        self.run("delete_many", first, |s| s.delete_many(keys))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.run("increment", key, |s| s.increment(key, delta))
    }
}

/// Outbound HTTP: the scheduler answers as the gateway or the bot.
pub struct SimHttp<'y>(&'y Channel);

impl HttpClient for SimHttp<'_> {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        let n = requests.len();
        match self.0.suspend(Yield::Http(requests)) {
            Resume::Http(results) => results,
            _ => vec![Err(TransportError::Other("no answer".into())); n],
        }
    }
}

/// The simulated clock; pauses suspend.
pub struct SimClock<'y> {
    world: Rc<World>,
    channel: &'y Channel,
}

impl Clock for SimClock<'_> {
    fn now_ms(&self) -> u64 {
        self.world.now()
    }
    fn sleep(&self, duration: Duration) {
        self.channel.suspend(Yield::Sleep(duration));
    }
}

/// Randomness from the run's seed.
pub struct SimRandom(Rc<World>);

impl Random for SimRandom {
    fn fill(&self, buf: &mut [u8]) {
        for byte in buf {
            *byte = self.0.rng(|r| r.next_u64() as u8);
        }
    }
}

/// The variables as they are when read (a run enables and disables gateways).
pub struct SimVariables(Rc<World>);

impl Variables for SimVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        self.0.variables.borrow().get(name)
    }
}

/// Everything a request borrows, owned inside its coroutine.
pub struct SimPlatform<'y> {
    records: SimStore<'y>,
    claims: SimStore<'y>,
    http: SimHttp<'y>,
    clock: SimClock<'y>,
    random: SimRandom,
    variables: SimVariables,
}

impl<'y> SimPlatform<'y> {
    /// The platform of one request.
    pub fn new(world: &Rc<World>, channel: &'y Channel) -> Self {
        Self {
            records: SimStore {
                label: "default",
                world: world.clone(),
                channel,
            },
            claims: SimStore {
                label: "claims",
                world: world.clone(),
                channel,
            },
            http: SimHttp(channel),
            clock: SimClock {
                world: world.clone(),
                channel,
            },
            random: SimRandom(world.clone()),
            variables: SimVariables(world.clone()),
        }
    }

    /// The view the route handlers take.
    pub fn platform(&self) -> Platform<'_> {
        Platform {
            records: &self.records,
            claims: &self.claims,
            http: &self.http,
            clock: &self.clock,
            random: &self.random,
            variables: &self.variables,
        }
    }
}
