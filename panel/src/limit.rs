//! The panel's own limit on failed sign-ins per client address, so that it cannot be used
//! to spray passwords (the module's throttle still applies on top, per mailbox).
//!
//! IPv6 clients are counted by their /64 (one host usually holds a whole /64). The table is
//! bounded: when full, the entry whose newest failure is oldest is dropped.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Most addresses tracked at once.
const MAX_ADDRESSES: usize = 65_536;

/// Failed sign-ins per address.
pub struct SignInLimit {
    max: u32,
    interval: u64,
    table: Mutex<HashMap<IpAddr, VecDeque<u64>>>,
}

impl SignInLimit {
    /// At most `max` failures per `interval` seconds per address.
    pub fn new(max: u32, interval: u64) -> SignInLimit {
        SignInLimit {
            max,
            interval,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(until)` when `ip` is past the limit at `now`: refuse without asking Dovecot.
    pub fn check(&self, ip: IpAddr, now: u64) -> Result<(), u64> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = table.get_mut(&key(ip)) else {
            return Ok(());
        };
        forget_old(times, now, self.interval);
        if times.len() >= self.max as usize {
            let oldest = times.front().copied().unwrap_or(now);
            Err(oldest + self.interval)
        } else {
            Ok(())
        }
    }

    /// Counts one failed sign-in from `ip` at `now`.
    pub fn fail(&self, ip: IpAddr, now: u64) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&key(ip)) {
            let interval = self.interval;
            table.retain(|_, t| t.back().is_some_and(|last| last + interval > now));
            if table.len() >= MAX_ADDRESSES {
                if let Some(victim) = table
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied().unwrap_or(0))
                    .map(|(k, _)| *k)
                {
                    table.remove(&victim);
                }
            }
        }
        let times = table.entry(key(ip)).or_default();
        forget_old(times, now, self.interval);
        times.push_back(now);
        while times.len() > self.max as usize {
            times.pop_front();
        }
    }
}

fn forget_old(times: &mut VecDeque<u64>, now: u64, interval: u64) {
    while times.front().is_some_and(|t| t + interval <= now) {
        times.pop_front();
    }
}

/// The key of an address: IPv4 as it is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match crate::client::canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_for_the_interval_then_lifts() {
        let limit = SignInLimit::new(3, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for t in 0..3 {
            assert_eq!(limit.check(ip, t), Ok(()));
            limit.fail(ip, t);
        }
        assert_eq!(limit.check(ip, 3), Err(100));
        assert_eq!(limit.check("192.0.2.2".parse().unwrap(), 3), Ok(()));
        assert_eq!(limit.check(ip, 100), Ok(()));
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        let limit = SignInLimit::new(1, 100);
        limit.fail("2001:db8::1".parse().unwrap(), 0);
        assert!(limit.check("2001:db8::ffff".parse().unwrap(), 1).is_err());
        assert!(limit.check("2001:db8:0:1::1".parse().unwrap(), 1).is_ok());
    }
}
