//! Faults the scheduler injects besides store errors and kills: clock jumps past leases,
//! retry times and TTLs, and a corrupted record.

use super::*;

/// What a corrupted record holds.
pub(super) const CORRUPT_RECORD: &[u8] = b"\x00not a record";

impl Sim {
    pub(super) fn jump_clock(&mut self) {
        let config = &self.world.config;
        let choices = [
            config.lease_ms + 1_000,
            config.longest_step_ms() + 1_000,
            config.ttl_ms + 61_000,
            self.world.rng(|r| r.range(1_000, 60_000)),
        ];
        let by = choices[self.rng(|r| r.below(choices.len() as u64)) as usize];
        self.world.count(|c| c.clock_jumps += 1);
        self.world
            .log(|| format!("-- the clock jumps {} s", by / 1000));
        self.world.advance(by);
        // Every request in flight lived through it (a pause of its process): what it answers
        // is an answer under faults.
        for actor in self.actors.iter_mut().flatten() {
            actor.faulted = true;
        }
    }

    pub(super) fn corrupt_one(&mut self) {
        let keys: Vec<String> = self
            .world
            .records
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("deposit:") || k.starts_with("credit:"))
            .collect();
        if keys.is_empty() {
            return;
        }
        let key = keys[self.rng(|r| r.below(keys.len() as u64)) as usize].clone();
        let id = key.split(':').nth(1).unwrap_or_default().to_string();
        use topup_core::platform::KeyValue;
        // The nonces it named are lost with it; the record stays for the operator.
        if let Ok(Some(old)) = self.world.records.get(&key) {
            let text = String::from_utf8_lossy(&old);
            for part in text.split("\"nonce\":\"").skip(1) {
                if let Some(nonce) = part.split('"').next() {
                    self.lost_nonces.insert(nonce.to_string(), key.clone());
                }
            }
        }
        let _ = self.world.records.set(&key, CORRUPT_RECORD);
        self.world.log(|| format!("-- record {key} is corrupted"));
        self.corrupted.insert(id);
    }
}
