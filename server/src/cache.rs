//! A small TTL cache with singleflight: at most one load in flight; while it
//! runs, callers get the previous value if there is one, otherwise they wait
//! for that load. The load runs in its own task, so a caller that goes away
//! cannot strand the others, and no lock is held across it. A failed load is
//! never cached: the next call loads again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

type Flight<T> = watch::Receiver<Option<Result<T, String>>>;

struct State<T> {
    value: Option<(Instant, T)>,
    inflight: Option<Flight<T>>,
}

pub struct SingleFlight<T> {
    ttl: Duration,
    /// Whether the caller that starts a refresh also gets the stale value
    /// (true) or waits for the fresh one (false).
    stale_to_leader: bool,
    state: Mutex<State<T>>,
    loads: AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    pub fn new(ttl: Duration, stale_to_leader: bool) -> SingleFlight<T> {
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
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub async fn get<F, Fut>(self: &Arc<Self>, load: F) -> Result<T, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, String>> + Send + 'static,
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
                    tokio::spawn(async move {
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
        let res = flight
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the load was abandoned".to_string())?
            .clone();
        res.unwrap_or_else(|| Err("the load returned nothing".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_load_for_a_herd_and_errors_are_not_cached() {
        let c = Arc::new(SingleFlight::<u32>::new(Duration::from_secs(60), false));
        let calls = (0..100).map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(7)
                })
                .await
            })
        });
        for r in futures_util::future::join_all(calls).await {
            assert_eq!(r.unwrap(), Ok(7));
        }
        assert_eq!(c.loads(), 1);

        let e = Arc::new(SingleFlight::<u32>::new(Duration::from_secs(60), false));
        assert!(e.get(|| async { Err("boom".to_string()) }).await.is_err());
        assert_eq!(
            e.get(|| async { Ok(1) }).await,
            Ok(1),
            "errors are not cached"
        );
        assert_eq!(e.loads(), 2);
    }

    #[tokio::test]
    async fn stale_value_is_served_while_refreshing() {
        let c = Arc::new(SingleFlight::<u32>::new(Duration::from_millis(1), true));
        assert_eq!(c.get(|| async { Ok(1) }).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let got = c
            .get(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(2)
            })
            .await;
        assert_eq!(got, Ok(1), "the leader gets the stale value at once");
        tokio::time::sleep(Duration::from_millis(80)).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let c2 = c.clone();
        let now = c2.get(|| async { Ok(3) }).await.unwrap();
        assert!(now == 2 || now == 3, "{now}");
    }
}
