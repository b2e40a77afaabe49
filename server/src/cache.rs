//! A small TTL cache with singleflight: at most one load in flight; while it
//! runs, callers get the previous value if there is one, otherwise they wait
//! for that load. The load runs in its own task, so a caller that goes away
//! cannot strand the others, and no lock is held across it. A failed load is
//! never cached: the next call loads again, and so does the call after a
//! load that panicked.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

type Flight<T, E> = watch::Receiver<Option<Result<T, E>>>;

struct State<T, E> {
    value: Option<(Instant, T)>,
    inflight: Option<Flight<T, E>>,
}

/// What a caller gets when the load it waited for vanished (its task was
/// cancelled), so there is no result to share.
pub(crate) trait Abandoned {
    fn abandoned() -> Self;
}

pub(crate) struct SingleFlight<T, E> {
    ttl: Duration,
    /// Whether the caller that starts a refresh also gets the stale value
    /// (true) or waits for the fresh one (false).
    stale_to_leader: bool,
    state: Mutex<State<T, E>>,
    loads: AtomicU64,
}

impl<T, E> SingleFlight<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + Abandoned + 'static,
{
    pub(crate) fn new(ttl: Duration, stale_to_leader: bool) -> SingleFlight<T, E> {
        SingleFlight {
            ttl,
            stale_to_leader,
            state: Mutex::new(State {
                value: None,
                inflight: None,
            }),
            loads: AtomicU64::new(0),
        }
    }

    /// How many loads ran so far.
    pub(crate) fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub(crate) async fn get<F, Fut>(self: &Arc<Self>, load: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut flight = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match (&st.value, &st.inflight) {
                (Some((at, v)), _) if at.elapsed() < self.ttl => return Ok(v.clone()),
                (Some((_, v)), Some(_)) => return Ok(v.clone()),
                (None, Some(rx)) => rx.clone(),
                (stale, None) => {
                    let stale = stale.as_ref().map(|(_, v)| v.clone());
                    let (tx, rx) = watch::channel(None);
                    st.inflight = Some(rx.clone());
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    let me = self.clone();
                    let fut = load();
                    let clear = ClearFlight {
                        cache: self.clone(),
                        flight: rx.clone(),
                    };
                    tokio::spawn(async move {
                        // Clears the flight if the load panics, so the next
                        // caller loads again instead of waiting on nothing.
                        let _clear = clear;
                        let res = fut.await;
                        {
                            let mut st = me.state.lock().unwrap_or_else(|p| p.into_inner());
                            st.inflight = None;
                            if let Ok(v) = &res {
                                st.value = Some((Instant::now(), v.clone()));
                            }
                        }
                        let _ = tx.send(Some(res));
                    });
                    match stale {
                        Some(v) if self.stale_to_leader => return Ok(v),
                        _ => rx,
                    }
                }
            }
        };
        let res = match flight.wait_for(Option::is_some).await {
            Ok(r) => r.clone(),
            Err(_) => return Err(E::abandoned()),
        };
        res.unwrap_or_else(|| Err(E::abandoned()))
    }
}

/// Ends a load's flight when its task ends without a result (a panic in
/// the load); after a normal end the flight is already gone and this does
/// nothing, whatever flight has started since.
struct ClearFlight<T, E> {
    cache: Arc<SingleFlight<T, E>>,
    flight: Flight<T, E>,
}

impl<T, E> Drop for ClearFlight<T, E> {
    fn drop(&mut self) {
        let mut st = self.cache.state.lock().unwrap_or_else(|p| p.into_inner());
        if st
            .inflight
            .as_ref()
            .is_some_and(|f| f.same_channel(&self.flight))
        {
            st.inflight = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Boom(&'static str);

    impl Abandoned for Boom {
        fn abandoned() -> Self {
            Boom("abandoned")
        }
    }

    type Cache = SingleFlight<u32, Boom>;

    #[tokio::test]
    async fn one_load_for_a_herd_and_errors_are_not_cached() {
        let c = Arc::new(Cache::new(Duration::from_secs(60), false));
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(Mutex::new(Some(gate)));
        // All 100 calls are made before the one load may finish: join!
        // polls the calls (the first starts the load) before opening the gate.
        let calls = (0..100).map(|_| {
            let (c, gate) = (c.clone(), gate.clone());
            async move {
                c.get(move || {
                    let g = gate.lock().unwrap().take();
                    async move {
                        if let Some(g) = g {
                            let _ = g.await;
                        }
                        Ok(7)
                    }
                })
                .await
            }
        });
        let (results, ()) = tokio::join!(futures_util::future::join_all(calls), async {
            open.send(()).unwrap();
        });
        assert!(results.iter().all(|r| *r == Ok(7)), "{results:?}");
        assert_eq!(c.loads(), 1);

        let e = Arc::new(Cache::new(Duration::from_secs(60), false));
        assert_eq!(
            e.get(|| async { Err(Boom("boom")) }).await,
            Err(Boom("boom"))
        );
        assert_eq!(
            e.get(|| async { Ok(1) }).await,
            Ok(1),
            "errors are not cached"
        );
        assert_eq!(e.loads(), 2);
    }

    #[tokio::test]
    async fn stale_value_is_served_while_refreshing() {
        // A zero TTL: every call finds the value stale.
        let c = Arc::new(Cache::new(Duration::ZERO, true));
        assert_eq!(c.get(|| async { Ok(1) }).await, Ok(1), "a cold cache waits");
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let got = c
            .get(|| async {
                let _ = gate.await;
                Ok(2)
            })
            .await;
        assert_eq!(got, Ok(1), "the leader gets the stale value at once");
        // While the refresh is in flight, nobody starts another.
        let follower = c.get(|| async { Ok(99) }).await;
        assert_eq!(follower, Ok(1));
        assert_eq!(c.loads(), 2);
        open.send(()).unwrap();
        // The refreshed value shows once its load ends, before any later one.
        let first_new = loop {
            match c.get(|| async { Ok(3) }).await {
                Ok(1) => tokio::task::yield_now().await,
                other => break other,
            }
        };
        assert_eq!(first_new, Ok(2));
    }

    #[tokio::test]
    async fn a_load_that_panics_is_not_waited_on_forever() {
        let c = Arc::new(Cache::new(Duration::from_secs(60), false));
        let panicked = c
            .get(|| async {
                if true {
                    panic!("load failed inside");
                }
                Ok(1)
            })
            .await;
        assert_eq!(panicked, Err(Boom("abandoned")), "its waiter is told");
        assert_eq!(
            c.get(|| async { Ok(2) }).await,
            Ok(2),
            "the next call loads again"
        );
        assert_eq!(c.loads(), 2);
    }
}
