//! Connections per user (API.md: `WS_MAX_CONNECTIONS_PER_USER`, default 10). A user at the
//! cap is refused before the upgrade (429), so one account cannot hold thousands of sockets
//! open; each connection holds a `Slot`, given back when the connection ends however it
//! ends (its task returns, panics or is dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

pub struct UserConnections {
    max: usize,
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open connection of one user.
pub struct Slot {
    owner: Arc<UserConnections>,
    user: Uuid,
}

impl UserConnections {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection of `user`, or `None` at the cap.
    pub fn acquire(self: &Arc<Self>, user: Uuid) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            owner: self.clone(),
            user,
        })
    }

    /// Users with at least one connection (the map forgets the others).
    pub fn users(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_at_the_cap_gets_no_slot_until_one_is_given_back() {
        let connections = UserConnections::new(2);
        let ada = Uuid::from_u128(1);
        let first = connections.acquire(ada).expect("first");
        let _second = connections.acquire(ada).expect("second");
        assert!(connections.acquire(ada).is_none(), "the third is refused");
        assert!(
            connections.acquire(Uuid::from_u128(2)).is_some(),
            "others are not"
        );
        drop(first);
        assert!(
            connections.acquire(ada).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn users_without_connections_are_forgotten() {
        let connections = UserConnections::new(1);
        drop(connections.acquire(Uuid::from_u128(1)));
        assert_eq!(connections.users(), 0);
    }
}
