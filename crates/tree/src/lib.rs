//! The ZooKeeper data model: the tree of znodes with their Stat and ACL, the watch
//! registry, and the transactions that change them.
//!
//! This crate is pure and deterministic: no IO, no clocks (time arrives inside each
//! [`Txn`]), ordered collections only, so two replicas that apply the same transactions
//! hold the same tree. It does not validate requests; that is `replica`'s prepare step,
//! which turns a request into a [`Txn`] that this crate then applies.

pub mod acl;
pub mod data_tree;
mod node;
pub mod path;
mod snapshot;
pub mod txn;
pub mod watch;

pub use data_tree::{DataTree, NodeRef, Notification, OpResult};
pub use node::{Meta, Node};
pub use txn::{owner, Txn, TxnOp};
pub use watch::{ConnId, WatchKind, Watches};
