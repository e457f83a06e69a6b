//! Static schedules chosen offline: FlexGen's linear cost model ([`flexgen`]) and the best
//! static split of the KV for a trace ([`static_split`], `kvtier optimize`).
//!
//! Not here: the decode loop that times a schedule ([`crate::engine`]).

pub mod flexgen;
