//! The server's PIN hashing: bounded, because each argon2id hash takes 19 MiB (and
//! ≥ 250 ms). The PIN policy and the verifier itself are `clinic_domain::pin`,
//! which the device checks PINs with; every PIN hashed here passes the clinic's
//! policy ([`PinPolicy::Clinic`]), so the server never stores a PIN it refuses.

use std::sync::{Arc, Mutex};

use clinic_domain::pin::{HashMemory, PinError, PinPolicy, verifier_in};
use tokio::sync::Semaphore;

/// Hashes PINs for the server: at most `concurrency` at once (further callers
/// wait), each in one of at most `concurrency` reused 19 MiB work areas. Reusing
/// them matters as much as the limit: freed 19 MiB buffers make glibc raise its
/// mmap threshold and keep them on its heaps, so 48 PIN PUTs in a row grew a
/// server by 420 MiB even two at a time; with the work areas kept, by ~40 MiB.
pub struct PinHasher {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<HashMemory>>>,
}

impl PinHasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The verifier of `pin` (refused unless the clinic's policy accepts it),
    /// computed on the blocking pool once a permit is free.
    pub async fn verifier(&self, pin: String) -> Result<String, PinError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PinError::Hash("the PIN hasher is closed".into()))?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let taken = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut memory = taken.unwrap_or_default();
            let verifier = verifier_in(&pin, PinPolicy::Clinic, &mut memory);
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            verifier
        })
        .await
        .map_err(|e| PinError::Hash(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use clinic_domain::pin;

    use super::*;

    #[tokio::test]
    async fn the_server_hasher_makes_the_domains_verifiers_in_reused_memory() {
        let hasher = PinHasher::new(1);
        let first = hasher.verifier("246813".into()).await.unwrap();
        let second = hasher.verifier("246813".into()).await.unwrap();
        let prefix = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            pin::M_COST_KIB,
            pin::T_COST,
            pin::P_COST
        );
        for v in [&first, &second] {
            assert!(v.starts_with(&prefix), "{v}");
            assert!(pin::verify("246813", v));
        }
        assert!(!pin::verify("246814", &first));
        assert_ne!(first, second, "salted, in reused memory");
        assert_eq!(
            hasher.memory.lock().unwrap().len(),
            1,
            "one work area, kept"
        );
        for (weak, refusal) in [
            ("1234", pin::PinRefusal::DemoPin),
            ("123456", pin::PinRefusal::Sequential),
            ("777777", pin::PinRefusal::Repeated),
            ("24681", pin::PinRefusal::TooShort),
        ] {
            assert_eq!(
                hasher.verifier(weak.into()).await,
                Err(PinError::Refused(refusal)),
                "{weak}"
            );
        }
    }
}
