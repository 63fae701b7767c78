//! The server's PIN hashing: bounded, because each argon2id hash takes 19 MiB.
//! The PIN rules and the verifier itself are `clinic_domain::pin`, which the
//! device checks PINs with.

use std::sync::{Arc, Mutex};

use clinic_domain::pin::{HashMemory, PinError, verifier_in};
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

    /// The verifier of `pin`, computed on the blocking pool once a permit is free.
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
            let verifier = verifier_in(&pin, &mut memory);
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
        let first = hasher.verifier("2468".into()).await.unwrap();
        let second = hasher.verifier("2468".into()).await.unwrap();
        for v in [&first, &second] {
            assert!(v.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{v}");
            assert!(pin::verify("2468", v));
            assert!(!pin::verify("2469", v));
        }
        assert_ne!(first, second, "salted, in reused memory");
        assert_eq!(
            hasher.memory.lock().unwrap().len(),
            1,
            "one work area, kept"
        );
        assert_eq!(
            hasher.verifier("12a4".into()).await,
            Err(PinError::Malformed)
        );
    }
}
